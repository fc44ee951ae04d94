package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/pprof"
	"time"

	"nochat/bench"
)

// runBench is the load generator: nochat bench [flags]. With
// -serve-baseline it serves the in-memory baseline to compare with instead.
func runBench(ctx context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("nochat bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: nochat bench [flags]
       nochat bench -serve-baseline ADDR

nochat bench connects many WebSocket clients to a chat server, has some of
them send, and reports what arrived: lost and duplicated deliveries,
deliveries a second and send-to-receive latency. It speaks nochat.v1 or the
tutorial's echo-protocol, which any broadcast server speaks.

Modes:
  fanout  -senders clients send -rate messages a second each (default)
  burst   every client sends as fast as its last -window messages, not
          yet received back, allow
  idle    clients only hold their connections (read the server's RSS)

Examples:
  nochat bench -clients 1000 -senders 5 -rate 10 -duration 10s -verify
  nochat bench -mode burst -clients 50 -duration 5s -proto echo-protocol
  nochat bench -mode idle -clients 5000 -pid $(pgrep -n nochat)
  nochat bench -serve-baseline 127.0.0.1:9090

Flags:
`)
		fs.PrintDefaults()
	}
	var cfg bench.Config
	var mode, jsonPath, baseline, cpuProfile string
	fs.StringVar(&cfg.URL, "url", "", "WebSocket `URL` of the server (default "+bench.DefaultURL+"; with -proto centrifugo, "+bench.CentrifugoURL+")")
	fs.StringVar(&cfg.Proto, "proto", bench.ProtoV1, "subprotocol: nochat.v1, echo-protocol, or centrifugo (Centrifugo's JSON client protocol, to compare)")
	fs.StringVar(&mode, "mode", string(bench.Fanout), "fanout, burst or idle")
	fs.IntVar(&cfg.Clients, "clients", 100, "WebSocket connections")
	fs.IntVar(&cfg.Senders, "senders", 0, "clients that send (default 5 in fanout, every client in burst)")
	fs.Float64Var(&cfg.Rate, "rate", 10, "fanout: messages a second per sender")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "how long to send; idle: how long to hold, 0 until interrupted (default until interrupted)")
	fs.IntVar(&cfg.Window, "window", 16, "burst: messages a sender may have sent and not yet received back")
	fs.IntVar(&cfg.Size, "size", 64, "message text `bytes` (at least the header, about 50)")
	fs.BoolVar(&cfg.Single, "single", false, "nochat.v1: ask for one frame a message, not several to a \"messages\" frame (?batch=1)")
	fs.BoolVar(&cfg.Verify, "verify", false, "check over REST afterwards that every sent message is in history")
	fs.StringVar(&jsonPath, "json", "", "also write the results as JSON to `file`")
	fs.IntVar(&cfg.Connect, "connect-concurrency", 64, "connections dialled at once")
	fs.IntVar(&cfg.PID, "pid", 0, "the server's process `id`: report its CPU time and RSS (Linux /proc)")
	fs.DurationVar(&cfg.Drain, "drain", 30*time.Second, "after sending, the longest wait for deliveries still on their way")
	fs.DurationVar(&cfg.Quiet, "drain-quiet", 5*time.Second, "after sending, stop waiting sooner when nothing has arrived for this long")
	fs.DurationVar(&cfg.Stall, "stall", time.Second, "burst: give up on a sender's window (messages lost) when its oldest is this old and twice the latency seen")
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write the generator's own CPU profile to `file`")
	fs.StringVar(&baseline, "serve-baseline", "", "serve the in-memory melody baseline on `host:port` instead of generating load")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("bench: unexpected argument %q", fs.Arg(0))}
	}

	if baseline != "" {
		ln, err := net.Listen("tcp", baseline)
		if err != nil {
			return fmt.Errorf("serve baseline: %w", err)
		}
		fmt.Fprintf(stdout, "baseline (in-memory melody broadcast, echo-protocol) serving on ws://%s/ (pid %d); Ctrl-C stops it\n", ln.Addr(), os.Getpid())
		return bench.ServeBaseline(ctx, ln)
	}

	cfg.Mode = bench.Mode(mode)
	if cfg.Mode == bench.Idle {
		set := false
		fs.Visit(func(f *flag.Flag) { set = set || f.Name == "duration" })
		if !set {
			cfg.Duration = 0 // hold until interrupted
		}
	}
	if err := cfg.Normalize(); err != nil {
		return usageError{fmt.Errorf("bench: -%w", err)}
	}
	cfg.Progress = stderr

	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return fmt.Errorf("bench: -cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("bench: -cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	res, err := bench.Run(ctx, cfg)
	if res != nil {
		fmt.Fprintln(stdout)
		if werr := res.WriteTable(stdout); werr != nil {
			return werr
		}
		if jsonPath != "" {
			if werr := writeJSON(jsonPath, res); werr != nil {
				return werr
			}
		}
	}
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	if v := res.Verify; v != nil && v.Missing > 0 {
		return fmt.Errorf("bench: %d of %d sent messages are missing from history", v.Missing, v.Sent)
	}
	return nil
}

func writeJSON(path string, res *bench.Result) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: -json: %w", err)
	}
	if err := res.WriteJSON(f); err != nil {
		f.Close()
		return fmt.Errorf("bench: -json: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("bench: -json: %w", err)
	}
	return nil
}
