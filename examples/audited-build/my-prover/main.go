// my-prover: the program of the audited-build example, compiled by a Go toolchain that tdx built
// from source. A toy: for each connection it reads one line and answers with the line's SHA-256
// and the Go release that compiled it ("<hex> go1.22.5").
//
//	my-prover --listen ADDR
package main

import (
	"bufio"
	"crypto/sha256"
	"flag"
	"fmt"
	"log"
	"net"
	"runtime"
)

func prove(conn net.Conn) {
	defer conn.Close()
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil && line == "" {
		return
	}
	fmt.Fprintf(conn, "%x %s\n", sha256.Sum256([]byte(line)), runtime.Version())
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("my-prover: ")
	listen := flag.String("listen", "127.0.0.1:7000", "address to listen on")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("built with %s, listening on %s", runtime.Version(), ln.Addr())
	for {
		if conn, err := ln.Accept(); err == nil {
			go prove(conn)
		}
	}
}
