// A stand-in for Nethermind, built by the tdx-nethermind example module because Nethermind's
// sources cannot be downloaded where the examples are built. It takes Nethermind's command line
// (--config FILE --datadir DIR), reads the config.json sections it needs, logs what it read and
// listens on the JSON-RPC, engine API and P2P ports. Each connection is answered with one line,
// "nethermind <chain> <listener>", and closed. It is not an Ethereum client.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The config.json keys the tdx-nethermind template writes; any other key is an error.
type config struct {
	Init struct {
		ChainSpecPath string
		BaseDbPath    string
		LogFileName   string
	}
	Network struct {
		P2PPort       int
		DiscoveryPort int
	}
	JsonRpc struct {
		Enabled       bool
		Host          string
		Port          int
		EngineHost    string
		EnginePort    int
		JwtSecretFile string
	}
}

func readConfig(path string) (config, error) {
	var c config
	raw, err := os.ReadFile(path)
	if err != nil {
		return c, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("%s: %v", path, err)
	}
	return c, nil
}

func answer(ln net.Listener, line string) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			continue
		}
		conn.Write([]byte(line))
		conn.Close()
	}
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("nethermind (stand-in): ")
	configPath := flag.String("config", "", "the instance's config.json")
	datadir := flag.String("datadir", "", "the instance's data directory")
	flag.Parse()
	if *configPath == "" || *datadir == "" {
		log.Fatal("usage: nethermind --config FILE --datadir DIR")
	}
	c, err := readConfig(*configPath)
	if err != nil {
		log.Fatal(err)
	}
	if st, err := os.Stat(*datadir); err != nil || !st.IsDir() {
		log.Fatalf("data directory %s is missing", *datadir)
	}
	chain := strings.TrimSuffix(filepath.Base(c.Init.ChainSpecPath), ".json")
	log.Printf("config %s: chain %s, database %s, data directory %s", *configPath, chain, c.Init.BaseDbPath, *datadir)
	if c.JsonRpc.JwtSecretFile != "" {
		if _, err := os.Stat(c.JsonRpc.JwtSecretFile); err == nil {
			log.Printf("engine API JWT secret %s: present", c.JsonRpc.JwtSecretFile)
		} else {
			log.Printf("engine API JWT secret %s: not delivered yet", c.JsonRpc.JwtSecretFile)
		}
	}

	listeners := [][2]string{{"p2p", net.JoinHostPort("", strconv.Itoa(c.Network.P2PPort))}}
	if c.JsonRpc.Enabled {
		listeners = append(listeners,
			[2]string{"json-rpc", net.JoinHostPort(c.JsonRpc.Host, strconv.Itoa(c.JsonRpc.Port))},
			[2]string{"engine", net.JoinHostPort(c.JsonRpc.EngineHost, strconv.Itoa(c.JsonRpc.EnginePort))})
	}
	for _, l := range listeners {
		ln, err := net.Listen("tcp", l[1])
		if err != nil {
			log.Fatalf("%s: %v", l[0], err)
		}
		log.Printf("%s listening on %s", l[0], ln.Addr())
		go answer(ln, fmt.Sprintf("nethermind %s %s\n", chain, l[0]))
	}
	log.Print("ready")
	select {}
}
