// metrics-agg: on each request for /metrics it scrapes the node exporter (--target) and answers,
// over HTTP/1.0, whether the target was up and how many samples it served, per metric family.
//
//	metrics-agg --port PORT [--target HOST:PORT]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"
)

// scrape returns the number of samples per metric name that target serves on /metrics.
func scrape(target string) (map[string]int, error) {
	conn, err := net.DialTimeout("tcp", target, 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n", target)
	r := bufio.NewReader(conn)
	status, err := r.ReadString('\n')
	if err != nil || !strings.Contains(status, " 200 ") {
		return nil, fmt.Errorf("unexpected answer %q", strings.TrimSpace(status))
	}
	for line, err := r.ReadString('\n'); strings.TrimSpace(line) != ""; line, err = r.ReadString('\n') {
		if err != nil {
			return nil, err
		}
	}
	body, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	families := map[string]int{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, _ := strings.Cut(line, " ")
		name, _, _ = strings.Cut(name, "{")
		families[name]++
	}
	return families, nil
}

func report(target string) string {
	var b strings.Builder
	families, err := scrape(target)
	if err != nil {
		log.Printf("scrape %s: %v", target, err)
		fmt.Fprintf(&b, "metrics_agg_up{target=%q} 0\n", target)
		return b.String()
	}
	fmt.Fprintf(&b, "metrics_agg_up{target=%q} 1\n", target)
	names := make([]string, 0, len(families))
	for name := range families {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(&b, "metrics_agg_samples{target=%q,family=%q} %d\n", target, name, families[name])
	}
	return b.String()
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("metrics-agg: ")
	port := flag.Int("port", 9090, "port to serve /metrics on")
	target := flag.String("target", "127.0.0.1:9100", "the node exporter to scrape")
	flag.Parse()
	ln, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(*port)))
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("serving /metrics on %s, scraping %s", ln.Addr(), *target)
	for {
		conn, err := ln.Accept()
		if err != nil {
			continue
		}
		go func(conn net.Conn) {
			defer conn.Close()
			bufio.NewReader(conn).ReadString('\n')
			body := report(*target)
			fmt.Fprintf(conn, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		}(conn)
	}
}
