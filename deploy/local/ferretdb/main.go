// Command ferretdb runs FerretDB 1.24.2 through its embeddable package.
//
// Why a wrapper: `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2` builds but panics
// at start-up, because the command wants a generated version file that the module does not ship.
// The embeddable package has no such need, and runs with telemetry off.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on")
	dataDir := flag.String("data-dir", "data", "folder for the SQLite backend's files (created if missing)")
	handler := flag.String("handler", "sqlite", "backend: sqlite or postgresql")
	postgresURL := flag.String("postgresql-url", "", "PostgreSQL URL, for -handler=postgresql")
	// WAL with synchronous=NORMAL survives a crash of FerretDB or of any client (what the fault
	// tests do) and syncs at checkpoints instead of on every commit; only a power cut can lose
	// the last commits, an acceptable trade for a local and test stack.
	synchronous := flag.String("sqlite-synchronous", "normal", "SQLite synchronous pragma: normal or full")
	flag.Parse()

	abs, err := filepath.Abs(*dataDir)
	if err != nil {
		log.Fatalf("data dir %q: %v", *dataDir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		log.Fatalf("cannot create data dir %q: %v", abs, err)
	}

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:      ferretdb.ListenerConfig{TCP: *listen},
		Handler:       *handler,
		SQLiteURL:     "file:" + abs + "/?_pragma=synchronous(" + *synchronous + ")",
		PostgreSQLURL: *postgresURL,
	})
	if err != nil {
		log.Fatalf("cannot configure FerretDB: %v", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Printf("ferretdb listening on %s (data in %s)\n", *listen, abs)
	if err := f.Run(ctx); err != nil {
		log.Fatalf("ferretdb stopped: %v", err)
	}
}
