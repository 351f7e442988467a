#include <stdio.h>

int main(void) {
  printf("ctool built at %s\n", __FILE__);
  return 0;
}
