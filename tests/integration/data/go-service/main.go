// greeter: a small TCP service that reads `key=value` config and answers with its greeting.
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "--version" {
		fmt.Println("greeter 1.0 (go)")
		return
	}
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: greeter CONFIG")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	conf := map[string]string{"greeting": "hello", "port": "8080"}
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		if k, v, ok := strings.Cut(scanner.Text(), "="); ok {
			conf[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	ln, err := net.Listen("tcp", ":"+conf["port"])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("greeter: %q on port %s\n", conf["greeting"], conf["port"])
	for {
		c, err := ln.Accept()
		if err == nil {
			fmt.Fprintln(c, conf["greeting"])
			c.Close()
		}
	}
}
