package bolt

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/bbolt"
)

// committer is a group commit: writes that arrive while a commit is on its way to the disk
// wait for it, and then share the next commit, so one fsync answers them all. Unlike bbolt's
// db.Batch, no write waits for a timer: a write alone is committed at once, as db.Update would,
// and under load each commit takes every write queued during the one before (up to maxSize).
//
// There is no goroutine of its own: the first write to find no commit running leads, committing
// the queue's head, and then hands the lead to the first write still queued, if any. So the
// leader's own answer waits for one commit only, and Close needs no shutdown.
//
// Like db.Batch, a function may run more than once, and must be idempotent: the writes of a
// group run in one transaction; when one returns an error, the transaction is rolled back, that
// write leaves the group and is run again alone in a transaction of its own (whose result its
// caller gets), and the others run again without it. A function's result is that of its last
// run, the one committed. A caller is answered only after the commit holding its write, fsync
// included, has returned.
//
// A function that refuses before it writes anything (a refusal, see refused) leaves the
// transaction as it found it: the group goes on without it, nothing is rolled back or run
// again, and its caller gets the refusal once the group has committed. Refusals are what an
// anonymous client's wrong token makes, so each would otherwise make its group redo every
// other write in it. Should the commit fail, a refused function runs again alone, since what it
// read may never have been.
type committer struct {
	db      *bbolt.DB
	maxSize int
	delay   time.Duration

	mu      sync.Mutex
	queue   []*commitCall
	leading bool // a write is leading: it or a later leader will take the queue
}

type commitCall struct {
	fn   func(*bbolt.Tx) error
	done chan error // gets the result, errRunAlone or errLead
}

// refusal is the error of a function that wrote nothing before it returned it.
type refusal struct{ err error }

func (r refusal) Error() string { return r.err.Error() }
func (r refusal) Unwrap() error { return r.err }

// refused marks err, returned by a write function, as a refusal: nothing was written. The
// function's caller gets err itself.
func refused(err error) error { return refusal{err} }

var (
	// errRunAlone tells a caller that its function failed in a group: run it alone.
	errRunAlone = errors.New("storage/bolt: run the write alone")
	// errLead tells a queued caller to lead the next commit.
	errLead = errors.New("storage/bolt: lead the next commit")
)

// write runs fn in a shared read-write transaction and returns once it is committed.
func (c *committer) write(fn func(*bbolt.Tx) error) error {
	call := &commitCall{fn: fn, done: make(chan error, 1)}
	c.mu.Lock()
	c.queue = append(c.queue, call)
	lead := !c.leading
	c.leading = true
	c.mu.Unlock()
	if lead {
		c.lead()
	}
	for {
		switch err := <-call.done; err {
		case errLead:
			c.lead()
		case errRunAlone:
			err := c.db.Update(fn)
			if r, ok := err.(refusal); ok {
				return r.err
			}
			return err
		default:
			return err
		}
	}
}

// lead commits the head of the queue, then hands the lead on.
func (c *committer) lead() {
	if c.delay > 0 {
		c.mu.Lock()
		short := len(c.queue) < c.maxSize
		c.mu.Unlock()
		if short {
			time.Sleep(c.delay)
		}
	}
	c.mu.Lock()
	n := min(len(c.queue), c.maxSize)
	group := c.queue[:n:n]
	c.queue = c.queue[n:]
	c.mu.Unlock()

	c.commit(group)
	clear(group) // the queue's array may outlive the calls: drop them for the GC

	c.mu.Lock()
	if len(c.queue) > 0 {
		c.queue[0].done <- errLead
	} else {
		c.leading = false
	}
	c.mu.Unlock()
}

// commit runs the group's functions in one transaction and answers each caller. A function
// that fails, or panics, leaves the group to be run alone by its caller, where a panic reaches
// the caller's goroutine as it would from db.Update.
func (c *committer) commit(group []*commitCall) {
	for len(group) > 0 {
		failed := -1
		refusedWith := make([]error, len(group)) // the refusal of each call that refused, by index
		err := c.db.Update(func(tx *bbolt.Tx) error {
			clear(refusedWith)
			for i, call := range group {
				err := runSafely(call.fn, tx)
				if r, ok := err.(refusal); ok {
					refusedWith[i] = r.err
				} else if err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			for i, call := range group {
				switch {
				case refusedWith[i] == nil:
					call.done <- err
				case err == nil:
					call.done <- refusedWith[i]
				default:
					call.done <- errRunAlone
				}
			}
			return
		}
		group[failed].done <- errRunAlone
		group = append(group[:failed], group[failed+1:]...)
	}
}

func runSafely(fn func(*bbolt.Tx) error, tx *bbolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("storage/bolt: a write panicked: %v", p)
		}
	}()
	return fn(tx)
}
