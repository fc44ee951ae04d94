package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

func TestBenchUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-clients", "many"},
		{"-mode", "storm"},
		{"-proto", "chat"},
		{"-url", "http://localhost:8080/"},
		{"-mode", "idle", "-verify"},
		{"extra"},
	} {
		var stderr bytes.Buffer
		err := run(context.Background(), append([]string{"nochat", "bench"}, args...), func(string) string { return "" }, io.Discard, &stderr)
		var usage usageError
		if !errors.As(err, &usage) {
			t.Errorf("nochat bench %q: %v, want a usage error (exit status 2)", args, err)
		}
	}
	var stderr bytes.Buffer
	if err := run(context.Background(), []string{"nochat", "bench", "-h"}, func(string) string { return "" }, io.Discard, &stderr); err != nil {
		t.Fatalf("-h: %v", err)
	}
	if !bytes.Contains(stderr.Bytes(), []byte("-serve-baseline")) {
		t.Fatalf("-h does not list -serve-baseline:\n%s", stderr.String())
	}
}

// TestBenchAgainstServedBaseline runs both halves as a user would: the
// baseline with -serve-baseline, then the generator against it.
func TestBenchAgainstServedBaseline(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"nochat", "bench", "-serve-baseline", "127.0.0.1:0"}, func(string) string { return "" }, pw, io.Discard)
		pw.Close()
		done <- err
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no serving line: %v", err)
	}
	go io.Copy(io.Discard, pr)
	m := regexp.MustCompile(`serving on (ws://\S+/)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("serving line %q has no ws:// URL", line)
	}

	jsonPath := filepath.Join(t.TempDir(), "result.json")
	var stdout bytes.Buffer
	err = run(context.Background(), []string{"nochat", "bench", "-url", m[1], "-proto", "echo-protocol",
		"-clients", "5", "-senders", "2", "-rate", "20", "-duration", "300ms", "-json", jsonPath},
		func(string) string { return "" }, &stdout, io.Discard)
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, stdout.String())
	}
	if !regexp.MustCompile(`(?m)^\s+lost\s+0 \(0\.00%\)$`).Match(stdout.Bytes()) {
		t.Fatalf("table does not report 0 lost:\n%s", stdout.String())
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Connected int   `json:"connected"`
		Sent      int64 `json:"sent"`
		Delivered int64 `json:"delivered"`
		Lost      int64 `json:"lost"`
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("-json file: %v\n%s", err, b)
	}
	if res.Connected != 5 || res.Sent == 0 || res.Delivered != 5*res.Sent || res.Lost != 0 {
		t.Fatalf("-json result %+v, want 5 clients each receiving every sent message", res)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("baseline: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("baseline did not stop")
	}
}
