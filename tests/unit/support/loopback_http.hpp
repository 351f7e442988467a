// A small HTTP/1.1 server on 127.0.0.1 for unit tests of downloads: serves byte strings by path
// (404 otherwise), one request per connection, and records the paths asked for.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace tdx::test {

class LoopbackHttp {
 public:
  LoopbackHttp() {
    m_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (m_fd < 0 || ::bind(m_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(m_fd, 8) != 0 ||
        ::getsockname(m_fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
      throw std::runtime_error("loopback server: cannot listen on 127.0.0.1");
    m_port = ntohs(addr.sin_port);
    m_thread = std::thread([this] { serve(); });
  }

  ~LoopbackHttp() {
    m_stop = true;
    ::shutdown(m_fd, SHUT_RDWR);  // wakes accept()
    m_thread.join();
    ::close(m_fd);
  }

  LoopbackHttp(const LoopbackHttp&) = delete;
  LoopbackHttp& operator=(const LoopbackHttp&) = delete;

  // Serves `body` at `path` from now on; returns its URL.
  std::string add(const std::string& path, std::string body) {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_routes[path] = std::move(body);
    return url(path);
  }

  std::string url(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(m_port) + path; }

  std::vector<std::string> requests() const {
    std::lock_guard<std::mutex> lock(m_mutex);
    return m_requests;
  }

 private:
  void serve() {
    while (!m_stop) {
      int client = ::accept4(m_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      answer(client);
      ::close(client);
    }
  }

  void answer(int client) {
    std::string request;
    char buf[4096];
    while (request.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::recv(client, buf, sizeof buf, 0);
      if (n <= 0) return;
      request.append(buf, static_cast<std::size_t>(n));
    }
    // "GET /path HTTP/1.1"
    std::size_t start = request.find(' ') + 1, end = request.find(' ', start);
    std::string path = request.substr(start, end - start);
    std::string status = "200 OK", body;
    {
      std::lock_guard<std::mutex> lock(m_mutex);
      m_requests.push_back(path);
      auto it = m_routes.find(path);
      if (it == m_routes.end()) status = "404 Not Found";
      else body = it->second;
    }
    std::string response = "HTTP/1.1 " + status + "\r\nContent-Length: " + std::to_string(body.size()) +
                           "\r\nConnection: close\r\n\r\n" + body;
    for (std::size_t sent = 0; sent < response.size();) {
      ssize_t n = ::send(client, response.data() + sent, response.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<std::size_t>(n);
    }
  }

  int m_fd = -1;
  int m_port = 0;
  std::atomic<bool> m_stop{false};
  mutable std::mutex m_mutex;
  std::map<std::string, std::string> m_routes;
  std::vector<std::string> m_requests;
  std::thread m_thread;
};

}  // namespace tdx::test
