package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mcert/mcert/storage"
	"github.com/mcert/mcert/storage/bolt"
	"github.com/mcert/mcert/storage/postgres"
)

// storeFlagHelp is --store's help, the same for every command that takes it.
const storeFlagHelp = "where the records are: bolt:<file> (default: bolt:<data>/mcert.db), or a PostgreSQL URL postgres://user:password@host:5432/mcert, which several instances may share"

// storeSpec is what --store names: a bbolt data file, or a PostgreSQL database.
type storeSpec struct {
	boltPath    string // bolt:<path>
	postgresURL string // postgres://... or postgresql://...
}

// parseStoreSpec reads --store; an empty one is the data directory's bbolt file.
func parseStoreSpec(spec, dataDir string) (storeSpec, error) {
	switch {
	case spec == "":
		return storeSpec{boltPath: filepath.Join(dataDir, "mcert.db")}, nil
	case strings.HasPrefix(spec, "bolt:"):
		if p := strings.TrimPrefix(spec, "bolt:"); p != "" {
			return storeSpec{boltPath: p}, nil
		}
	case strings.HasPrefix(spec, "postgres://"), strings.HasPrefix(spec, "postgresql://"):
		return storeSpec{postgresURL: spec}, nil
	}
	return storeSpec{}, fmt.Errorf("--store %q: give bolt:<file>, such as bolt:./data/mcert.db, or a PostgreSQL URL, such as postgres://mcert@db.example.tw:5432/mcert", redactURL(spec))
}

// String names the store for messages, without a password.
func (s storeSpec) String() string {
	if s.boltPath != "" {
		return "bolt:" + s.boltPath
	}
	return redactURL(s.postgresURL)
}

// flag is the spec as --store takes it, password and all.
func (s storeSpec) flag() string {
	if s.boltPath != "" {
		return "bolt:" + s.boltPath
	}
	return s.postgresURL
}

// redactURL hides a URL's password, for logs and messages.
func redactURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw
	}
	userinfo, host, ok := strings.Cut(rest, "@")
	if !ok {
		return raw
	}
	if user, _, hasPassword := strings.Cut(userinfo, ":"); hasPassword {
		return scheme + "://" + user + ":xxxxx@" + host
	}
	return raw
}

// open opens the store: the one place the binary opens one.
func (s storeSpec) open(ctx context.Context) (storage.Store, error) {
	if s.boltPath != "" {
		return bolt.Open(s.boltPath, bolt.Options{})
	}
	st, err := postgres.Open(ctx, s.postgresURL, postgres.Options{})
	if err != nil {
		return nil, fmt.Errorf("%w (--store %s)", err, s)
	}
	return st, nil
}

// copyBatch records are written to the destination in one transaction.
const copyBatch = 1000

// copyCounts counts records by kind, in the order of storage.Kinds.
type copyCounts map[string]int

func (c copyCounts) String() string {
	var parts []string
	for _, k := range storage.Kinds {
		if c[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, c[k]))
		}
	}
	if parts == nil {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}

func (c copyCounts) total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// eventsDigest is a digest of events in order, without their IDs (each store numbers its own):
// two stores with the same digest hold the same audit log.
type eventsDigest struct{ h hash.Hash }

func newEventsDigest() eventsDigest { return eventsDigest{sha256.New()} }

func (d eventsDigest) add(e storage.Event) {
	e.ID, e.Time = "", e.Time.UTC()
	_ = json.NewEncoder(d.h).Encode(e)
}

func runStoreCopy(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	from := fs.String("from", "", "the store to copy, of a stopped server: bolt:<file> or postgres://... (required)")
	to := fs.String("to", "", "the empty store to copy into: bolt:<file> or postgres://... (required); the servers then need the same --key-file, as the signing keys and secrets stay sealed")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *from == "" || *to == "" {
		return usageError(fs, "--from and --to are required")
	}
	src, err := parseStoreSpec(*from, "")
	if err != nil {
		return usageError(fs, strings.Replace(err.Error(), "--store", "--from", 1))
	}
	dst, err := parseStoreSpec(*to, "")
	if err != nil {
		return usageError(fs, strings.Replace(err.Error(), "--store", "--to", 1))
	}
	if src.flag() == dst.flag() {
		return usageError(fs, "--from and --to name the same store")
	}
	if _, err := os.Stat(src.boltPath); src.boltPath != "" && err != nil {
		return fmt.Errorf("--from %s: %w", src, err)
	}
	in, err := src.open(ctx)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	defer in.Close()
	out, err := dst.open(ctx)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	defer out.Close()
	errNotEmpty := errors.New("not empty")
	switch err := out.Dump(ctx, func(storage.Record) error { return errNotEmpty }); {
	case errors.Is(err, errNotEmpty):
		return fmt.Errorf("--to %s already holds records: copy into an empty store, so that nothing is mixed or overwritten", dst)
	case err != nil:
		return fmt.Errorf("--to: %w", err)
	}

	start := time.Now()
	progress := newProgress(stdout)
	copied, digest := copyCounts{}, newEventsDigest()
	var batch []storage.Record
	flush := func() error {
		err := out.Update(ctx, func(tx storage.Tx) error {
			for _, r := range batch {
				if err := r.Restore(tx); err != nil {
					return fmt.Errorf("write a %s record: %w", r.Kind(), err)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, r := range batch {
			copied[r.Kind()]++
		}
		batch = batch[:0]
		progress.show("copied %d records: %s", copied.total(), copied)
		return nil
	}
	err = in.Dump(ctx, func(r storage.Record) error {
		if r.Event != nil {
			digest.add(*r.Event)
		}
		if batch = append(batch, r); len(batch) == copyBatch {
			return flush()
		}
		return nil
	})
	if err == nil && len(batch) > 0 {
		err = flush()
	}
	if err != nil {
		return fmt.Errorf("copy from %s to %s: %w; %s may hold part of the copy: empty it before trying again", src, dst, err, dst)
	}
	progress.done("copied %d records in %.1f s: %s", copied.total(), time.Since(start).Seconds(), copied)
	if err := verifyCopy(ctx, in, out, copied, digest, progress); err != nil {
		return fmt.Errorf("the copy in %s does not match %s: %w", dst, src, err)
	}
	fmt.Fprintf(stdout, "verified: %s holds the same %d records as %s, each read back; start the servers with --store %s and the same --key-file\n", dst, copied.total(), src, dst)
	return nil
}

// verifyCopy checks the copy: the destination's records counted by kind, its audit log's
// digest, and every keyed record of the source read back from the destination by its key.
func verifyCopy(ctx context.Context, in, out storage.Store, want copyCounts, digest eventsDigest, progress *progress) error {
	got, outDigest := copyCounts{}, newEventsDigest()
	err := out.Dump(ctx, func(r storage.Record) error {
		got[r.Kind()]++
		if r.Event != nil {
			outDigest.add(*r.Event)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range storage.Kinds {
		if got[k] != want[k] {
			return fmt.Errorf("it holds %d %s, the source %d", got[k], k, want[k])
		}
	}
	if !bytes.Equal(digest.h.Sum(nil), outDigest.h.Sum(nil)) {
		return errors.New("its audit log differs")
	}
	checked := 0
	var batch []storage.Record
	reread := func() error {
		err := out.View(ctx, func(tx storage.ReadTx) error {
			for _, r := range batch {
				again, err := r.Reread(tx)
				if err != nil {
					return fmt.Errorf("read back a %s record: %w", r.Kind(), err)
				}
				if !storage.Same(again, r) {
					return fmt.Errorf("a %s record reads back otherwise than the source holds it", r.Kind())
				}
			}
			return nil
		})
		checked += len(batch)
		batch = batch[:0]
		progress.show("read back %d of %d records", checked, want.total())
		return err
	}
	err = in.Dump(ctx, func(r storage.Record) error {
		if batch = append(batch, r); len(batch) == copyBatch {
			return reread()
		}
		return nil
	})
	if err == nil && len(batch) > 0 {
		err = reread()
	}
	if err == nil {
		progress.done("read back %d records: the same", checked)
	}
	return err
}

// progress shows a long command's progress on a terminal, one line rewritten at most every
// half second; elsewhere (a log, a pipe) only what done says.
type progress struct {
	w        io.Writer
	terminal bool
	last     time.Time
}

func newProgress(w io.Writer) *progress {
	f, ok := w.(*os.File)
	var terminal bool
	if ok {
		if info, err := f.Stat(); err == nil {
			terminal = info.Mode()&os.ModeCharDevice != 0
		}
	}
	return &progress{w: w, terminal: terminal}
}

func (p *progress) show(format string, args ...any) {
	if !p.terminal || time.Since(p.last) < 500*time.Millisecond {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.w, "\r\033[K"+format, args...)
}

func (p *progress) done(format string, args ...any) {
	if p.terminal && !p.last.IsZero() {
		fmt.Fprint(p.w, "\r\033[K")
	}
	p.last = time.Time{}
	fmt.Fprintf(p.w, format+"\n", args...)
}
