// The calling rule, in Go, with nothing but the standard library:
//
//	call the endpoint you have; if the connection fails or the endpoint answers
//	"not found", read /registry/<service> again and retry once; if that fails,
//	it has failed.
//
//	go run client.go [--mount DIR] [--seconds N] [--interval S] SERVICE PATH
//
// Prints one line per failed call and a JSON summary at the end (the same
// summary as client.py, client.sh and Client.java).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

type stats struct {
	Calls     int      `json:"calls"`
	Ok        int      `json:"ok"`
	Rereads   int      `json:"rereads"`
	Failed    int      `json:"failed"`
	Endpoints []string `json:"endpoints"`
}

// lookup returns a health-checked host:port, or the read's error when the
// service has none (EHOSTDOWN, ENOENT).
func lookup(mount, service string) (string, error) {
	b, err := os.ReadFile(filepath.Join(mount, service))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

var client = &http.Client{Timeout: 2 * time.Second}

// call makes one request; a refused connection or an answer of 400 and up
// (404: "not found") is an error.
func call(endpoint, path string) error {
	r, err := client.Get("http://" + endpoint + path)
	if err != nil {
		return err
	}
	defer r.Body.Close()
	io.Copy(io.Discard, r.Body)
	if r.StatusCode >= 400 {
		return fmt.Errorf("%s%s answered %d", endpoint, path, r.StatusCode)
	}
	return nil
}

func main() {
	mount := flag.String("mount", "/registry", "the registry mount")
	seconds := flag.Float64("seconds", 10, "how long to call")
	interval := flag.Float64("interval", 0.05, "seconds between calls")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: go run client.go [--mount DIR] [--seconds N] [--interval S] SERVICE PATH")
		os.Exit(2)
	}
	service, path := flag.Arg(0), flag.Arg(1)
	s := stats{Endpoints: []string{}}
	endpoint := ""
	deadline := time.Now().Add(time.Duration(*seconds * float64(time.Second)))
	for time.Now().Before(deadline) {
		s.Calls++
		for attempt := 1; attempt <= 2; attempt++ {
			var err error
			if endpoint == "" || attempt == 2 {
				if attempt == 2 {
					s.Rereads++
				}
				endpoint, err = lookup(*mount, service)
				if err == nil && !contains(s.Endpoints, endpoint) {
					s.Endpoints = append(s.Endpoints, endpoint)
				}
			}
			if err == nil {
				err = call(endpoint, path)
			}
			if err == nil {
				s.Ok++
				break
			}
			if attempt == 2 {
				s.Failed++
				fmt.Printf("call failed twice: %v\n", err)
			}
		}
		time.Sleep(time.Duration(*interval * float64(time.Second)))
	}
	out, _ := json.Marshal(s)
	fmt.Println(string(out))
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}
