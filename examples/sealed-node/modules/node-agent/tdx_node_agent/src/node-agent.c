/* node-agent: the public face of a sealed node. Every TCP connection gets one line:
 *   node-agent <name>: secret present|absent
 * telling whether the file named by secret= exists (its contents are never read).
 * Usage: node-agent CONFIG   (lines: name=..., port=..., secret=/path)
 *        node-agent --version */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

struct agent_config {
  char name[64];
  char secret[256];
  int port;
};

static int copy_value(const char* line, const char* key, char* out, size_t size) {
  size_t n = strlen(key);
  if (strncmp(line, key, n) != 0 || line[n] != '=') return 0;
  snprintf(out, size, "%s", line + n + 1);
  out[strcspn(out, "\r\n")] = '\0';
  return 1;
}

static int read_config(const char* path, struct agent_config* cfg) {
  FILE* f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "node-agent: cannot open config %s: %s\n", path, strerror(errno));
    return -1;
  }
  char line[512], port[16] = "8080";
  while (fgets(line, sizeof line, f)) {
    if (line[0] == '#') continue;
    if (copy_value(line, "name", cfg->name, sizeof cfg->name)) continue;
    if (copy_value(line, "secret", cfg->secret, sizeof cfg->secret)) continue;
    copy_value(line, "port", port, sizeof port);
  }
  fclose(f);
  cfg->port = atoi(port);
  if (cfg->port <= 0 || cfg->port > 65535) {
    fprintf(stderr, "node-agent: %s: port=%s is not a TCP port (1-65535)\n", path, port);
    return -1;
  }
  return 0;
}

static int open_listener(int port) {
  struct sockaddr_in any;
  memset(&any, 0, sizeof any);
  any.sin_family = AF_INET;
  any.sin_port = htons((unsigned short)port);
  any.sin_addr.s_addr = htonl(INADDR_ANY);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int reuse = 1;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse) != 0 ||
      bind(fd, (const struct sockaddr*)&any, sizeof any) != 0 || listen(fd, 8) != 0) {
    fprintf(stderr, "node-agent: cannot listen on port %d: %s\n", port, strerror(errno));
    return -1;
  }
  return fd;
}

int main(int argc, char** argv) {
  if (argc == 2 && strcmp(argv[1], "--version") == 0) {
    puts("node-agent 0.1");
    return 0;
  }
  if (argc != 2) {
    fputs("usage: node-agent CONFIG\n", stderr);
    return 2;
  }
  struct agent_config cfg = {.name = "node", .secret = "", .port = 8080};
  if (read_config(argv[1], &cfg) != 0) return 1;
  int listener = open_listener(cfg.port);
  if (listener < 0) return 1;
  signal(SIGPIPE, SIG_IGN);
  printf("node-agent %s: listening on port %d\n", cfg.name, cfg.port);
  fflush(stdout);
  for (;;) {
    int client = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    if (client < 0) continue;
    struct stat st;
    const char* state = cfg.secret[0] && stat(cfg.secret, &st) == 0 ? "present" : "absent";
    dprintf(client, "node-agent %s: secret %s\n", cfg.name, state);
    close(client);
  }
}
