// Package qr makes and reads the QR codes that carry a one-time token from a desktop page to
// the phone: the text formats of PROTOCOL.md sections 3 and 4a, their PNG and terminal
// renderings, and decoding a photo or screenshot of one.
package qr

import (
	"bytes"
	"encoding/base64"
	"errors"
	"image"
	"image/color"
	_ "image/jpeg" // a phone's camera saves JPEG; registering the decoder costs nothing
	"image/png"
	"net/url"
	"strings"
	"sync"

	"github.com/makiuchi-d/gozxing"
	zxingqr "github.com/makiuchi-d/gozxing/qrcode"
	goqr "github.com/piglig/go-qr"

	"github.com/mcert/mcert"
)

// The kinds of link, also the last path segment of their URL.
const (
	KindBind  = "bind"
	KindLogin = "login"
	KindSign  = "sign" // a signing request shown on a website's page (PROTOCOL.md section 9)
)

// Token length bounds in base64url characters: 22 characters hold 128 bits, the least
// PROTOCOL.md allows; 128 leaves room for longer tokens without letting a QR code carry junk.
const (
	minTokenLen = 22
	maxTokenLen = 128
)

// An image larger than this is refused before decoding: a few bytes of PNG or JPEG header can
// claim a size whose pixels would not fit in memory. 8192 px covers any phone camera.
const maxImageSide = 8192

// BindText is the text of the QR code that binds a phone: the page a phone's camera opens, with
// the token in the fragment so that it never reaches a server log.
func BindText(publicURL, token string) string {
	return linkText(publicURL, KindBind, token)
}

// LoginText is the text of the QR code shown on a relying party's login page.
func LoginText(publicURL, token string) string {
	return linkText(publicURL, KindLogin, token)
}

// SignText is the text of the QR code of a signing request, which the website's page shows.
func SignText(publicURL, token string) string {
	return linkText(publicURL, KindSign, token)
}

func linkText(publicURL, kind, token string) string {
	return strings.TrimRight(publicURL, "/") + "/m/" + kind + "#" + token
}

// Link is a parsed QR code text.
type Link struct {
	Kind   string // KindBind, KindLogin or KindSign
	Origin string // scheme://host[:port], the WebAuthn origin the phone presents
	Base   string // the public base URL, which may include a path prefix
	Token  string
}

// Parse reads a text made by BindText or LoginText, as a camera or a QR decoder returns it.
func Parse(text string) (Link, error) {
	text = strings.TrimSpace(text)
	notOurs := mcert.InvalidQR.New()
	page, token, hasFragment := strings.Cut(text, "#")
	var l Link
	switch {
	case strings.HasSuffix(page, "/m/"+KindBind):
		l.Kind = KindBind
	case strings.HasSuffix(page, "/m/"+KindLogin):
		l.Kind = KindLogin
	case strings.HasSuffix(page, "/m/"+KindSign):
		l.Kind = KindSign
	default:
		return Link{}, notOurs
	}
	l.Base = strings.TrimSuffix(page, "/m/"+l.Kind)
	origin, ok := baseOrigin(l.Base)
	if !ok {
		return Link{}, notOurs
	}
	l.Origin = origin
	if !hasFragment || token == "" {
		return Link{}, mcert.QRNoToken.New()
	}
	if !validToken(token) {
		return Link{}, mcert.QRBadToken.New()
	}
	l.Token = token
	return l, nil
}

// baseOrigin checks that base is a public base URL as BindText writes it and returns its origin.
// A base ending in a slash, or with a query, user info or odd characters, is refused: BindText
// never writes one, so such a text was not made by mcert.
func baseOrigin(base string) (string, bool) {
	if strings.HasSuffix(base, "/") || strings.ContainsFunc(base, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return "", false
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil ||
		u.Opaque != "" || u.RawQuery != "" || u.ForceQuery {
		return "", false
	}
	return u.Scheme + "://" + u.Host, true
}

// validToken accepts base64url without padding; Strict refuses a last character with stray
// bits, which no encoder writes.
func validToken(token string) bool {
	if len(token) < minTokenLen || len(token) > maxTokenLen {
		return false
	}
	_, err := base64.RawURLEncoding.Strict().DecodeString(token)
	return err == nil
}

// pngSize is the width and height of PNG's images, in pixels: what version 1 of the protocol
// served, which clients decode as it is.
const pngSize = 256

// pngPalette is white and black, padded to 17 colours: Go's encoder writes a palette of two as
// a 1-bit PNG, pixel by pixel through an interface call, and one of more than 16 as 8 bits a
// pixel, a row at a time, which for a 256 px image costs a fraction of that.
var pngPalette = append(color.Palette{color.White, color.Black}, make(color.Palette, 15)...)

func init() {
	for i := 2; i < len(pngPalette); i++ {
		pngPalette[i] = color.White
	}
}

// PNG renders text as a 256 px QR code image with medium error correction, which survives a
// photo of a screen. Each module is a whole number of pixels (the rest is quiet zone), compressed
// for speed. go-qrcode's own PNG, and its encoding (4 times piglig/go-qr's), cost a binding more
// CPU than everything else the server does for it.
func PNG(text string) ([]byte, error) {
	bits, err := modules(text)
	if err != nil {
		return nil, err
	}
	// The largest QR code, version 40, is 185 modules with its 4-module quiet zone: every code
	// fits in pngSize at a whole number of pixels a module.
	scale := pngSize / len(bits)
	offset := (pngSize - len(bits)*scale) / 2
	img := image.NewPaletted(image.Rect(0, 0, pngSize, pngSize), pngPalette)
	for y, row := range bits {
		for x, dark := range row {
			if !dark {
				continue
			}
			for dy := range scale {
				start := img.PixOffset(offset+x*scale, offset+y*scale+dy)
				for i := range scale {
					img.Pix[start+i] = 1
				}
			}
		}
	}
	var buf bytes.Buffer
	if err := pngEncoder.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// pngEncoder keeps its compressors for the next image: a new one allocates and clears a
// megabyte.
var pngEncoder = &png.Encoder{CompressionLevel: png.BestSpeed, BufferPool: &encoderPool{}}

type encoderPool struct{ pool sync.Pool }

func (p *encoderPool) Get() *png.EncoderBuffer {
	b, _ := p.pool.Get().(*png.EncoderBuffer)
	return b
}

func (p *encoderPool) Put(b *png.EncoderBuffer) { p.pool.Put(b) }

// quietZone is the light border a QR code needs around it, in modules.
const quietZone = 4

// modules are text's QR code with medium error correction and its quiet zone, row by row:
// true for a dark module.
func modules(text string) ([][]bool, error) {
	q, err := goqr.EncodeText(text, goqr.Medium)
	if err != nil {
		return nil, mcert.QRTooLong.Newf(err)
	}
	n := q.Size() + 2*quietZone
	bits := make([][]bool, n)
	for y := range bits {
		bits[y] = make([]bool, n)
		for x := range bits[y] {
			bits[y][x] = q.Module(x-quietZone, y-quietZone) // false outside the code
		}
	}
	return bits, nil
}

// Terminal renders text as a QR code of block characters, two rows per line, for a terminal with
// a dark background: a light module is drawn, a dark one left dark.
func Terminal(text string) (string, error) {
	bits, err := modules(text)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for y := 0; y < len(bits); y += 2 {
		for x := range bits[y] {
			top, bottom := !bits[y][x], y+1 < len(bits) && !bits[y+1][x]
			switch {
			case top && bottom:
				b.WriteString("█")
			case top:
				b.WriteString("▀")
			case bottom:
				b.WriteString("▄")
			default:
				b.WriteString(" ")
			}
		}
		b.WriteString("\n")
	}
	return b.String(), nil
}

// DecodePNG finds a QR code in a PNG or JPEG image and returns its text.
func DecodePNG(data []byte) (string, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return "", notAnImage()
	}
	if cfg.Width > maxImageSide || cfg.Height > maxImageSide {
		return "", mcert.ImageTooLarge.Newf(format, cfg.Width, cfg.Height, maxImageSide)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return "", notAnImage()
	}
	bitmap, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return "", noCode()
	}
	// TRY_HARDER makes the detector search a photo, not only a clean rendering. The detector
	// still misses about one clean rendering in a hundred (measured on go-qrcode's PNGs), which
	// PURE_BARCODE, reading the image as nothing but the code and its margin, always reads;
	// so a saved screenshot is read even when the photo path fails.
	hints := map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true}
	result, err := zxingqr.NewQRCodeReader().Decode(bitmap, hints)
	if err != nil {
		hints[gozxing.DecodeHintType_PURE_BARCODE] = true
		if pure, perr := zxingqr.NewQRCodeReader().Decode(bitmap, hints); perr == nil {
			result, err = pure, nil
		}
	}
	var notFound gozxing.NotFoundException
	if errors.As(err, &notFound) {
		return "", noCode()
	}
	if err != nil {
		return "", mcert.UnreadableQRCode.New()
	}
	return result.GetText(), nil
}

func notAnImage() error {
	return mcert.InvalidImage.New()
}

func noCode() error {
	return mcert.NoQRCode.New()
}
