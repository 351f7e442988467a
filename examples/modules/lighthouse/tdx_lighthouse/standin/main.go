// A stand-in for Lighthouse's beacon node, built by the tdx-lighthouse example module because
// Lighthouse's sources cannot be downloaded where the examples are built. It takes
// `lighthouse bn --config-file FILE`, reads the flat TOML the module writes (one key per
// command-line flag), logs what it read, checks once whether the execution client's engine
// endpoint answers, and listens on the HTTP API and P2P ports. Each connection is answered with
// one line, "lighthouse <network> <listener>", and closed. It is not a consensus client.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

var known = map[string]bool{"network": true, "datadir": true, "execution-endpoint": true, "execution-jwt": true,
	"http": true, "http-address": true, "http-port": true, "port": true}

// readSettings parses `key = value` lines; strings are quoted, numbers and booleans are not.
func readSettings(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	settings := map[string]string{}
	scanner := bufio.NewScanner(f)
	for n := 1; scanner.Scan(); n++ {
		line := strings.TrimSpace(scanner.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if !ok || !known[key] {
			return nil, fmt.Errorf("%s:%d: unknown setting %q", path, n, line)
		}
		if strings.HasPrefix(value, `"`) {
			if value, err = strconv.Unquote(value); err != nil {
				return nil, fmt.Errorf("%s:%d: bad string for %s", path, n, key)
			}
		}
		settings[key] = value
	}
	return settings, scanner.Err()
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("lighthouse (stand-in): ")
	if len(os.Args) < 2 || os.Args[1] != "bn" {
		log.Fatal("usage: lighthouse bn --config-file FILE")
	}
	flags := flag.NewFlagSet("bn", flag.ExitOnError)
	configFile := flags.String("config-file", "", "settings, one key per flag")
	flags.Parse(os.Args[2:])
	s, err := readSettings(*configFile)
	if err != nil {
		log.Fatal(err)
	}
	if st, err := os.Stat(s["datadir"]); err != nil || !st.IsDir() {
		log.Fatalf("data directory %q is missing", s["datadir"])
	}
	log.Printf("config %s: network %s, data directory %s", *configFile, s["network"], s["datadir"])
	if jwt := s["execution-jwt"]; jwt != "" {
		if _, err := os.Stat(jwt); err == nil {
			log.Printf("execution JWT secret %s: present", jwt)
		} else {
			log.Printf("execution JWT secret %s: not delivered yet", jwt)
		}
	}
	if endpoint, err := url.Parse(s["execution-endpoint"]); err != nil || endpoint.Host == "" {
		log.Fatalf("execution-endpoint %q is not a URL", s["execution-endpoint"])
	} else if conn, err := net.DialTimeout("tcp", endpoint.Host, time.Second); err == nil {
		conn.Close()
		log.Printf("execution endpoint %s: answering", endpoint)
	} else {
		log.Printf("execution endpoint %s: not answering yet (%v)", endpoint, err)
	}

	listeners := [][2]string{{"p2p", net.JoinHostPort("", s["port"])}}
	if s["http"] == "true" {
		listeners = append(listeners, [2]string{"http", net.JoinHostPort(s["http-address"], s["http-port"])})
	}
	for _, l := range listeners {
		ln, err := net.Listen("tcp", l[1])
		if err != nil {
			log.Fatalf("%s: %v", l[0], err)
		}
		log.Printf("%s listening on %s", l[0], ln.Addr())
		go func(ln net.Listener, line string) {
			for {
				if conn, err := ln.Accept(); err == nil {
					conn.Write([]byte(line))
					conn.Close()
				}
			}
		}(ln, fmt.Sprintf("lighthouse %s %s\n", s["network"], l[0]))
	}
	log.Print("ready")
	select {}
}
