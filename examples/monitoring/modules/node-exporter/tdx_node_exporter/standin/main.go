// A stand-in for the Prometheus node exporter, built by the tdx-node-exporter example module
// because the node exporter's sources cannot be downloaded where the examples are built. It takes
// the node exporter's flags and serves Prometheus text on /metrics over HTTP/1.0: the load
// averages and memory figures from /proc, then every *.prom file of the textfile collector's
// folder, read at each scrape.
//
//	node_exporter --web.listen-address=ADDR --collector.textfile.directory=DIR
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

func procMetrics(out *bytes.Buffer) {
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(load))
		for i, name := range []string{"node_load1", "node_load5", "node_load15"} {
			if i < len(f) {
				fmt.Fprintf(out, "%s %s\n", name, f[i])
			}
		}
	}
	if mem, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(mem), "\n") {
			f := strings.Fields(line)
			if len(f) >= 2 && (f[0] == "MemTotal:" || f[0] == "MemAvailable:") {
				kb, _ := strconv.ParseUint(f[1], 10, 64)
				fmt.Fprintf(out, "node_memory_%s_bytes %d\n", strings.TrimSuffix(f[0], ":"), kb*1024)
			}
		}
	}
}

func textfileMetrics(out *bytes.Buffer, dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.prom"))
	for _, name := range files { // sorted by Glob
		if data, err := os.ReadFile(name); err == nil {
			out.Write(data)
		}
	}
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("node_exporter (stand-in): ")
	listen := flag.String("web.listen-address", ":9100", "address for the metrics endpoint")
	textfiles := flag.String("collector.textfile.directory", "", "folder of *.prom files to serve")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("serving /metrics on %s, textfile collector folder %q", ln.Addr(), *textfiles)
	for {
		conn, err := ln.Accept()
		if err != nil {
			continue
		}
		go func(conn net.Conn) {
			defer conn.Close()
			request, _ := bufio.NewReader(conn).ReadString('\n')
			if f := strings.Fields(request); len(f) < 2 || f[0] != "GET" || f[1] != "/metrics" {
				fmt.Fprint(conn, "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")
				return
			}
			var body bytes.Buffer
			procMetrics(&body)
			if *textfiles != "" {
				textfileMetrics(&body, *textfiles)
			}
			fmt.Fprintf(conn, "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: %d\r\n\r\n",
				body.Len())
			conn.Write(body.Bytes())
		}(conn)
	}
}
