/* hello-server: answers every TCP connection with its configured greeting.
 * Usage: hello-server CONFIG   (CONFIG holds greeting=..., port=...)
 *        hello-server --version */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc == 2 && strcmp(argv[1], "--version") == 0) {
    puts("hello-server 1.0");
    return 0;
  }
  if (argc != 2) {
    fprintf(stderr, "usage: hello-server CONFIG\n");
    return 2;
  }
  FILE* f = fopen(argv[1], "r");
  if (!f) {
    perror(argv[1]);
    return 1;
  }
  char line[256], greeting[128] = "hello";
  int port = 8080;
  while (fgets(line, sizeof line, f)) {
    if (sscanf(line, "greeting=%127[^\n]", greeting) == 1) continue;
    sscanf(line, "port=%d", &port);
  }
  fclose(f);
  int s = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  if (bind(s, (struct sockaddr*)&addr, sizeof addr) != 0 || listen(s, 16) != 0) {
    perror("listen");
    return 1;
  }
  printf("hello-server: '%s' on port %d\n", greeting, port);
  fflush(stdout);
  for (;;) {
    int c = accept(s, NULL, NULL);
    if (c < 0) continue;
    dprintf(c, "%s\n", greeting);
    close(c);
  }
}
