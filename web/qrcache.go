package web

import (
	"container/list"
	"sync"

	"github.com/mcert/mcert/qr"
)

// qrCache keeps the most recently drawn QR images by their text: the login page asks for its
// image again after every refresh and from every open tab, and drawing one takes about a
// millisecond. Losing it costs only that, so instances stay stateless.
type qrCache struct {
	mu     sync.Mutex
	max    int
	recent *list.List // of qrImage, most recently used first
	byText map[string]*list.Element
}

type qrImage struct {
	text string
	png  []byte
}

func newQRCache(max int) *qrCache {
	return &qrCache{max: max, recent: list.New(), byText: make(map[string]*list.Element)}
}

// png returns the image of text, drawing it on a miss.
func (q *qrCache) png(text string) ([]byte, error) {
	if png, ok := q.get(text); ok {
		return png, nil
	}
	// Drawn outside the lock, so that a miss does not hold up every other request; two
	// requests missing the same text at once both draw it, which is harmless.
	png, err := qr.PNG(text)
	if err != nil {
		return nil, err
	}
	q.put(text, png)
	return png, nil
}

func (q *qrCache) get(text string) ([]byte, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, ok := q.byText[text]
	if !ok {
		return nil, false
	}
	q.recent.MoveToFront(e)
	return e.Value.(qrImage).png, true
}

func (q *qrCache) put(text string, png []byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.byText[text]; ok {
		return
	}
	q.byText[text] = q.recent.PushFront(qrImage{text, png})
	if q.recent.Len() > q.max {
		oldest := q.recent.Remove(q.recent.Back()).(qrImage)
		delete(q.byText, oldest.text)
	}
}
