package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/mcert/mcert/storage"
	"github.com/mcert/mcert/storage/bolt"
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
	return nil, fmt.Errorf("--store %s: PostgreSQL is not built in yet", s)
}
