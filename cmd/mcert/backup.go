package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/mcert/mcert/storage/bolt"
)

func runBackup(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	server := fs.String("server", "http://localhost:8080", "the running server's public URL")
	token := fs.String("admin-token", "", "the server's admin API token (default: read from <data>/admin-token when --data is given)")
	dataDir := fs.String("data", "", "the server's data directory, to read its admin-token file from")
	out := fs.String("out", "", "file to write the backup to (required)")
	force := fs.Bool("force", false, "replace --out if it exists")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return usageError(fs, "--out is required")
	}
	if *token == "" && *dataDir != "" {
		data, err := os.ReadFile(filepath.Join(*dataDir, "admin-token"))
		if err != nil {
			return fmt.Errorf("read the admin token: %w (pass it with --admin-token instead)", err)
		}
		*token = strings.TrimSpace(string(data))
	}
	if *token == "" {
		return usageError(fs, "the admin token is required: --admin-token, MCERT_ADMIN_TOKEN, or --data DIR to read DIR/admin-token")
	}
	if err := refuseOverwrite(*out, *force); err != nil {
		return err
	}

	base := strings.TrimRight(*server, "/")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/admin/backup", nil)
	if err != nil {
		return fmt.Errorf("--server %q is not a URL such as http://localhost:8080: %w", *server, err)
	}
	req.Header.Set("Authorization", "Bearer "+*token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reach the server (check --server and that mcert serve runs there): %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return backupRefused(res)
	}
	tmp, n, err := stageDataFile(filepath.Dir(*out), res.Body)
	if err != nil {
		return fmt.Errorf("the backup from %s is not usable, and %s was left as it was: %w", base, *out, err)
	}
	defer os.Remove(tmp) // a no-op once renamed
	if err := refuseOverwrite(*out, *force); err != nil {
		return err
	}
	if err := os.Rename(tmp, *out); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(*out)); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote a backup of %s to %s (%d bytes; it passed the consistency check)\n", base, *out, n)
	return nil
}

// usageError says what is wrong with the command line, then shows the command's flags.
func usageError(fs *flag.FlagSet, problem string) error {
	fmt.Fprintln(fs.Output(), problem)
	fs.Usage()
	return errUsage
}

func refuseOverwrite(path string, force bool) error {
	if _, err := os.Lstat(path); err == nil && !force {
		return fmt.Errorf("%s already exists; choose another --out, or add --force to replace it", path)
	}
	return nil
}

// backupRefused says why the server answered something other than the backup.
func backupRefused(res *http.Response) error {
	var body struct{ Error, Message string }
	data, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if json.Unmarshal(data, &body) != nil || body.Error == "" {
		return fmt.Errorf("the server answered HTTP %d without an mcert error body; is --server an mcert server?", res.StatusCode)
	}
	hint := ""
	if res.StatusCode == http.StatusUnauthorized {
		hint = "; pass the server's own token: its <data>/admin-token, or what it was started with as --admin-token"
	}
	return fmt.Errorf("the server refused the backup (HTTP %d, %s): %s%s", res.StatusCode, body.Error, body.Message, hint)
}

func runRestore(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	dataDir := fs.String("data", "./data", "data directory of the stopped server")
	from := fs.String("from", "", "the backup file to restore, from mcert backup (required)")
	force := fs.Bool("force", false, "replace the data directory's data file; it is kept as mcert.db.before-restore-<time>")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *from == "" {
		return usageError(fs, "--from is required")
	}
	live := filepath.Join(*dataDir, "mcert.db")
	_, err := os.Lstat(live)
	replacing := err == nil
	if replacing && !*force {
		return fmt.Errorf("%s already holds a data file; add --force to replace it (it is kept as %s.before-restore-<time>)", *dataDir, live)
	}
	if err := os.MkdirAll(*dataDir, 0o700); err != nil {
		return err
	}
	src, err := os.Open(*from)
	if err != nil {
		return fmt.Errorf("read the backup: %w", err)
	}
	defer src.Close()
	tmp, _, err := stageDataFile(*dataDir, src)
	if err != nil {
		return fmt.Errorf("%s is not a usable backup, and nothing was changed: %w", *from, err)
	}
	defer os.Remove(tmp) // a no-op once renamed
	kept := ""
	if replacing {
		// Checked only now, after the backup: opening the data file to take its lock commits an
		// empty transaction to it, and a refused backup must leave the file as it was.
		if err := ensureStopped(live); err != nil {
			return err
		}
		// A hard link keeps the current file under its new name while mcert.db still names it,
		// so the rename below swaps the files with no moment in which mcert.db is missing.
		kept = live + ".before-restore-" + time.Now().UTC().Format("20060102T150405Z")
		if err := os.Link(live, kept); err != nil {
			return fmt.Errorf("keep the current data file as %s: %w; nothing was changed", kept, err)
		}
	}
	if err := os.Rename(tmp, live); err != nil {
		return err
	}
	if err := syncDir(*dataDir); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %s into %s\n", *from, live)
	if kept != "" {
		fmt.Fprintf(stdout, "the previous data file is kept as %s\n", kept)
	}
	return nil
}

// ensureStopped refuses to go on while a server has the data file open: the server holds the
// file's lock as long as it runs, so failing to take the lock is the sign.
func ensureStopped(live string) error {
	err := withDataFile(live, func(*bolt.Store) error { return nil })
	// The store's error for a held lock is the only one to stop for: a file too damaged to open
	// is what a restore is for.
	if errors.Is(err, bolt.ErrLocked) {
		return fmt.Errorf("a server is running on %s: stop it first, then restore (%v)", filepath.Dir(live), err)
	}
	return nil
}

// stageDataFile copies src into a new temporary file in dir, flushes it to disk and checks it,
// so that only a whole data file is ever renamed into place. It returns the file and its size.
func stageDataFile(dir string, src io.Reader) (string, int64, error) {
	f, err := os.CreateTemp(dir, ".mcert-*.db.partial")
	if err != nil {
		return "", 0, err
	}
	n, err := io.Copy(f, src)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = withDataFile(f.Name(), func(s *bolt.Store) error {
			// Reading the whole file proves that every page it refers to is there, which
			// bbolt's check assumes rather than tests.
			if _, err := s.WriteTo(io.Discard); err != nil {
				return fmt.Errorf("the data file is cut short: %w", err)
			}
			return s.Check()
		})
	}
	if err != nil {
		os.Remove(f.Name())
		return "", 0, err
	}
	return f.Name(), n, nil
}

// withDataFile opens the data file at path (for writing, as the server does) and runs fn on it.
func withDataFile(path string, fn func(*bolt.Store) error) (err error) {
	// A damaged file can make bbolt trip its own assertions, which panic, or read past the end
	// of the file, which faults: both say the file is bad, and neither may crash the command.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the data file is damaged: %v", r)
		}
	}()
	s, err := storeSpec{boltPath: path}.open(context.Background())
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(s.(*bolt.Store))
}

// syncDir makes the renames in dir durable: until the directory is flushed, a crash can bring
// back the old names.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("flush directory %s: %w", dir, err)
	}
	return nil
}
