// Command ferretdb runs FerretDB 1.24.2 on PostgreSQL through its embeddable package.
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
	"net/http"
	_ "net/http/pprof" // served only with -pprof-addr
	"os"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen-addr", "127.0.0.1:27017", "TCP address to listen on")
	handler := flag.String("handler", "postgresql", "backend (the stack runs postgresql)")
	// For profiling the local database under a benchmark (go tool pprof http://ADDR/debug/pprof/profile).
	pprofAddr := flag.String("pprof-addr", "", "serve Go's profiler on this address; off when empty")
	flag.Parse()

	if *pprofAddr != "" {
		go func() { log.Printf("profiler stopped: %v", http.ListenAndServe(*pprofAddr, nil)) }()
	}

	// The URL carries the database password: it comes from the environment, never the command
	// line, which every local user can read in the process list.
	postgresURL := os.Getenv("CMHL_FERRETDB_POSTGRESQL_URL")
	if postgresURL == "" {
		log.Fatal("set CMHL_FERRETDB_POSTGRESQL_URL to postgres://user:password@host:port/database")
	}

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:      ferretdb.ListenerConfig{TCP: *listen},
		Handler:       *handler,
		PostgreSQLURL: postgresURL,
	})
	if err != nil {
		log.Fatalf("cannot configure FerretDB: %v", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Printf("ferretdb listening on %s (PostgreSQL backend)\n", *listen)
	if err := f.Run(ctx); err != nil {
		log.Fatalf("ferretdb stopped: %v", err)
	}
}
