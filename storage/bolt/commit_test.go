package bolt

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/mcert/mcert/storage"
)

// TestWritesShareCommits checks that the writes queued during a commit share the next one.
func TestWritesShareCommits(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "mcert.db"), Options{})
	if txIDs := concurrentWrites(t, s, 20, true); slices.Min(txIDs) != slices.Max(txIDs) {
		t.Errorf("%d writes queued during a commit were committed in transactions %v, want one", len(txIDs), txIDs)
	}
}

// TestMaxBatchSize checks that a commit takes at most MaxBatchSize writes.
func TestMaxBatchSize(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "mcert.db"), Options{MaxBatchSize: 4})
	perTx := make(map[int]int)
	for _, id := range concurrentWrites(t, s, 10, true) {
		perTx[id]++
	}
	for id, n := range perTx {
		if n > 4 {
			t.Errorf("transaction %d took %d writes, want at most 4", id, n)
		}
	}
	if len(perTx) != 3 {
		t.Errorf("10 writes queued at once took %d commits, want 3 of at most 4", len(perTx))
	}
}

// TestMaxBatchDelay checks that a positive MaxBatchDelay lets writes that arrive within it
// share a commit, with no commit running to queue them.
func TestMaxBatchDelay(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "mcert.db"), Options{MaxBatchDelay: 200 * time.Millisecond})
	txIDs := concurrentWrites(t, s, 8, false)
	if n := len(slices.Compact(slices.Sorted(slices.Values(txIDs)))); n >= len(txIDs) {
		t.Errorf("%d concurrent writes took %d commits, want fewer", len(txIDs), n)
	}
}

// concurrentWrites starts n writes at once, queued behind a held commit if hold, and returns
// the ID of the transaction that committed each.
func concurrentWrites(t *testing.T, s *Store, n int, hold bool) []int {
	t.Helper()
	txIDs := make([]int, n)
	var held heldCommits
	if hold {
		held = holdCommits(t, s)
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := s.write(context.Background(), func(tx *bbolt.Tx) error { txIDs[i] = tx.ID(); return nil }); err != nil {
				t.Error(err)
			}
		})
	}
	if hold {
		held.release(n)
	}
	wg.Wait()
	return txIDs
}

// TestFailingWriteInAGroup puts transactions that fail into one group with the store's other
// writes on the login hot path. Each failure must reach its own caller only, and the others,
// run again without it, must give the results of the run that was committed: they read the
// stored record afresh, Hit counts each call once, and events keep their order.
func TestFailingWriteInAGroup(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "mcert.db"), Options{})
	d := seedDevice(t, s)
	const rounds = 6 // each round: a failing update, a good one, a Hit and an event
	var (
		wg              sync.WaitGroup
		goodRuns, fails atomic.Int64
		counts          = make([]int, rounds)
		signCounts      = make([]uint32, rounds)
		seen            = make([]uint32, rounds) // what each good update's last run was given
		events          = make([]storage.Event, rounds)
	)
	held := holdCommits(t, s)
	for i := range rounds {
		refusal := fmt.Errorf("refusal %d", i)
		wg.Go(func() {
			err := s.Update(ctx, func(tx storage.Tx) error {
				fails.Add(1)
				d, err := tx.Device(d.ID)
				if err != nil {
					return err
				}
				d.SignCount = 1000 // must never be stored
				if err := tx.PutDevice(d); err != nil {
					return err
				}
				return refusal
			})
			if !errors.Is(err, refusal) {
				t.Errorf("failing update %d: got %v, want its own error", i, err)
			}
		})
		wg.Go(func() {
			err := s.Update(ctx, func(tx storage.Tx) error {
				goodRuns.Add(1)
				d, err := tx.Device(d.ID)
				if err != nil {
					return err
				}
				seen[i] = d.SignCount
				d.SignCount++
				if err := tx.PutDevice(d); err != nil {
					return err
				}
				d, err = tx.Device(d.ID)
				signCounts[i] = d.SignCount
				return err
			})
			if err != nil {
				t.Errorf("update %d: %v", i, err)
			}
		})
		wg.Go(func() {
			var err error
			if counts[i], err = hit(s, "phone begin ip 192.0.2.1"); err != nil {
				t.Errorf("Hit %d: %v", i, err)
			}
		})
		wg.Go(func() {
			var err error
			if events[i], err = addEvent(s, storage.Event{Time: benchTime, Type: fmt.Sprint("event ", i)}); err != nil {
				t.Errorf("AppendEvent %d: %v", i, err)
			}
		})
	}
	held.release(4 * rounds)
	wg.Wait()

	if fails.Load() < 2*rounds {
		t.Errorf("the failing functions ran %d times, want twice each at least: in the group and alone", fails.Load())
	}
	if goodRuns.Load() <= rounds {
		t.Errorf("the good updates ran %d times in all, want more than once each: the group ran again after each failure", goodRuns.Load())
	}
	stored, err := storage.Get(ctx, s, func(tx storage.ReadTx) (storage.Device, error) { return tx.Device(d.ID) })
	if err != nil {
		t.Fatal(err)
	}
	if want := d.SignCount + rounds; stored.SignCount != want {
		t.Errorf("SignCount after %d good updates: %d, want %d", rounds, stored.SignCount, want)
	}
	for i := range seen {
		if seen[i]+1 != signCounts[i] {
			t.Errorf("update %d returned the count %d, but its last run was given %d", i, signCounts[i], seen[i])
		}
	}
	for i, n := range slices.Sorted(slices.Values(signCounts)) {
		if want := d.SignCount + uint32(i) + 1; n != want {
			t.Errorf("the good updates returned the counts %v, want %d to %d once each", signCounts, d.SignCount+1, d.SignCount+rounds)
			break
		}
	}
	for i, n := range slices.Sorted(slices.Values(counts)) {
		if n != i+1 {
			t.Errorf("Hit returned %v, want 1 to %d once each", counts, rounds)
			break
		}
	}
	if n, err := hit(s, "phone begin ip 192.0.2.1"); err != nil || n != rounds+1 {
		t.Errorf("the next Hit: got %d and %v, want %d", n, err, rounds+1)
	}
	listed, err := storage.Get(ctx, s, func(tx storage.ReadTx) ([]storage.Event, error) { return tx.Events("", "", 100) })
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(events, func(a, b storage.Event) int { return strings.Compare(b.ID, a.ID) })
	if !slices.EqualFunc(listed, events, func(a, b storage.Event) bool { return a.ID == b.ID && a.Type == b.Type }) {
		t.Errorf("Events: got %v, want the events AppendEvent returned, newest first: %v", listed, events)
	}
	last, err := addEvent(s, storage.Event{Time: benchTime, Type: "later"})
	if err != nil || last.ID <= events[0].ID {
		t.Errorf("an event appended later: got ID %q and %v, want one after %q", last.ID, err, events[0].ID)
	}
}

// TestRefusalInAGroup checks that a function that refuses before writing anything (here: a
// device it does not find, a create whose key is taken, a check that fails) leaves its group
// alone: the group is not rolled back, no function runs twice, each caller gets its own error
// as it was returned, and the good writes are committed. A wrong token from an anonymous
// client refuses so, and would otherwise make its group redo every other write in it.
func TestRefusalInAGroup(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "mcert.db"), Options{})
	d := seedDevice(t, s)
	const rounds = 6
	var (
		wg                     sync.WaitGroup
		goodRuns, refusingRuns atomic.Int64
	)
	refusals := []func(storage.Tx, int) error{
		func(tx storage.Tx, _ int) error { _, err := tx.Device("no such device"); return err },
		func(tx storage.Tx, _ int) error { return tx.CreateDevice(d) }, // its ID and credential are taken
		func(tx storage.Tx, i int) error {
			if _, err := tx.Device(d.ID); err != nil {
				return err
			}
			return fmt.Errorf("refusal %d", i)
		},
	}
	held := holdCommits(t, s)
	for i := range rounds {
		wg.Go(func() {
			var want error
			err := s.Update(ctx, func(tx storage.Tx) error {
				refusingRuns.Add(1)
				want = refusals[i%len(refusals)](tx, i)
				return want
			})
			if want == nil || err != want && !errors.Is(err, storage.ErrAlreadyExists) {
				t.Errorf("refusing update %d: got %v, want its own error %v", i, err, want)
			}
		})
		wg.Go(func() {
			err := s.Update(ctx, func(tx storage.Tx) error {
				goodRuns.Add(1)
				d, err := tx.Device(d.ID)
				if err != nil {
					return err
				}
				d.SignCount++
				return tx.PutDevice(d)
			})
			if err != nil {
				t.Errorf("update %d: %v", i, err)
			}
		})
	}
	held.release(2 * rounds)
	wg.Wait()
	if n := refusingRuns.Load(); n != rounds {
		t.Errorf("the refusing functions ran %d times, want %d: once each", n, rounds)
	}
	if n := goodRuns.Load(); n != rounds {
		t.Errorf("the good updates ran %d times, want %d: once each, no group ran again", n, rounds)
	}
	stored, err := storage.Get(ctx, s, func(tx storage.ReadTx) (storage.Device, error) { return tx.Device(d.ID) })
	if err != nil || stored.SignCount != d.SignCount+rounds {
		t.Errorf("SignCount after %d good updates: %d (%v), want %d", rounds, stored.SignCount, err, d.SignCount+rounds)
	}
}

// TestPanickingWriteInAGroup checks that a function that panics in a group panics in its own
// caller, and the group's other writes are committed.
func TestPanickingWriteInAGroup(t *testing.T) {
	ctx := context.Background()
	s := open(t, filepath.Join(t.TempDir(), "mcert.db"), Options{})
	seedDevice(t, s)
	held := holdCommits(t, s)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("the panicking write's caller recovered %v, want its panic", p)
			}
		}()
		_ = s.Update(ctx, func(storage.Tx) error { panic("boom") })
		t.Error("the panicking write returned")
	})
	wg.Go(func() {
		if _, err := hit(s, "k"); err != nil {
			t.Errorf("Hit: %v", err)
		}
	})
	held.release(2)
	wg.Wait()
	if n, err := hit(s, "k"); err != nil || n != 2 {
		t.Errorf("the next Hit: got %d and %v, want 2", n, err)
	}
	// The lead was handed on: writes still go through.
	if _, err := addEvent(s, storage.Event{Type: "after"}); err != nil {
		t.Errorf("a write after the panic: %v", err)
	}
}

// hit counts a hit of key in benchTime's minute, in a transaction of its own.
func hit(s *Store, key string) (int, error) {
	var n int
	err := s.Update(context.Background(), func(tx storage.Tx) error {
		var err error
		n, err = tx.Hit(key, time.Minute, benchTime)
		return err
	})
	return n, err
}

// heldCommits is a write that keeps the store's commit running until released, so that the
// writes started meanwhile queue up for the next one.
type heldCommits struct {
	t    *testing.T
	s    *Store
	stop chan struct{}
	done chan error
}

func holdCommits(t *testing.T, s *Store) heldCommits {
	t.Helper()
	h := heldCommits{t: t, s: s, stop: make(chan struct{}), done: make(chan error, 1)}
	running := make(chan struct{})
	go func() {
		h.done <- s.write(context.Background(), func(*bbolt.Tx) error {
			close(running)
			<-h.stop
			return nil
		})
	}()
	<-running
	return h
}

// release waits until n writes are queued, then lets the held commit end.
func (h heldCommits) release(n int) {
	h.t.Helper()
	queued := 0
	for deadline := time.Now().Add(10 * time.Second); queued != n && time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		h.s.commits.mu.Lock()
		queued = len(h.s.commits.queue)
		h.s.commits.mu.Unlock()
	}
	close(h.stop)
	if err := <-h.done; err != nil {
		h.t.Fatal(err)
	}
	if queued != n {
		h.t.Fatalf("%d writes queued, want %d", queued, n)
	}
}
