package qr

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"strings"
	"testing"

	"github.com/mcert/mcert"
)

// token22 and token43 are 128 and 256 bits in base64url, the shortest and a typical token.
const (
	token22 = "AAECAwQFBgcICQoLDA0ODw"
	token43 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
)

func TestText(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"bind", BindText("http://localhost:8080", token22), "http://localhost:8080/m/bind#" + token22},
		{"login", LoginText("https://mcert.example.tw", token22), "https://mcert.example.tw/m/login#" + token22},
		{"trailing slash", BindText("https://mcert.example.tw/", token22), "https://mcert.example.tw/m/bind#" + token22},
		{"path prefix", LoginText("https://example.tw/mcert/", token22), "https://example.tw/mcert/m/login#" + token22},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		text string
		want Link
	}{
		{"bind", "http://localhost:8080/m/bind#" + token22,
			Link{Kind: KindBind, Origin: "http://localhost:8080", Base: "http://localhost:8080", Token: token22}},
		{"login", "https://mcert.example.tw/m/login#" + token43,
			Link{Kind: KindLogin, Origin: "https://mcert.example.tw", Base: "https://mcert.example.tw", Token: token43}},
		{"path prefix", "https://example.tw/id/mcert/m/bind#" + token22,
			Link{Kind: KindBind, Origin: "https://example.tw", Base: "https://example.tw/id/mcert", Token: token22}},
		{"whitespace", "\n  http://[::1]:9/m/login#" + token22 + " \r\n",
			Link{Kind: KindLogin, Origin: "http://[::1]:9", Base: "http://[::1]:9", Token: token22}},
		{"longest token", "http://h/m/bind#" + strings.Repeat("A", maxTokenLen),
			Link{Kind: KindBind, Origin: "http://h", Base: "http://h", Token: strings.Repeat("A", maxTokenLen)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.text)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseRefuses(t *testing.T) {
	tests := []struct {
		name string
		text string
		want string // part of the message
	}{
		{"empty", "", "not an mcert QR code"},
		{"other site", "https://example.com/?q=" + token22, "not an mcert QR code"},
		{"other page", "http://localhost:8080/m/other#" + token22, "not an mcert QR code"},
		{"ftp", "ftp://localhost/m/bind#" + token22, "not an mcert QR code"},
		{"relative", "/m/bind#" + token22, "not an mcert QR code"},
		{"no host", "http:///m/bind#" + token22, "not an mcert QR code"},
		{"port only", "http://:8080/m/bind#" + token22, "not an mcert QR code"},
		{"user info", "http://u:p@localhost/m/bind#" + token22, "not an mcert QR code"},
		{"query", "http://localhost/?a=b/m/bind#" + token22, "not an mcert QR code"},
		{"double slash", "http://localhost//m/bind#" + token22, "not an mcert QR code"},
		{"space inside", "http://localhost/a b/m/bind#" + token22, "not an mcert QR code"},
		{"trailing path", "http://localhost/m/bind/#" + token22, "not an mcert QR code"},
		{"no fragment", "http://localhost/m/bind", "no token"},
		{"empty fragment", "http://localhost/m/bind#", "no token"},
		{"short token", "http://localhost/m/bind#" + token22[:21], "malformed"},
		{"long token", "http://localhost/m/bind#" + strings.Repeat("A", maxTokenLen+1), "malformed"},
		{"padding", "http://localhost/m/bind#" + token22 + "==", "malformed"},
		{"standard base64", "http://localhost/m/bind#" + strings.Repeat("+", 22), "malformed"},
		{"impossible length", "http://localhost/m/bind#" + strings.Repeat("A", 25), "malformed"},
		{"stray bits", "http://localhost/m/bind#" + token22[:21] + "x", "malformed"},
		{"second fragment", "http://localhost/m/bind#" + token22 + "#" + token22, "malformed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.text)
			if err == nil {
				t.Fatal("Parse accepted it")
			}
			if mcert.ErrorKind(err) != mcert.Invalid || !strings.Contains(err.Error(), "invalid_qr") {
				t.Errorf("got %v, want an invalid_qr error", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %q, want it to say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), token22[:10]) {
				t.Errorf("the error %q shows the token", err)
			}
		})
	}
}

func TestPNGRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		text string
		kind string
	}{
		{"bind", BindText("http://localhost:8080", token43), KindBind},
		{"login", LoginText("https://mcert.example.tw/prefix", token22), KindLogin},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, err := PNG(tc.text)
			if err != nil {
				t.Fatalf("PNG: %v", err)
			}
			cfg, err := png.DecodeConfig(bytes.NewReader(data))
			if err != nil || cfg.Width != 256 || cfg.Height != 256 {
				t.Fatalf("got a %dx%d image (%v), want 256x256 PNG", cfg.Width, cfg.Height, err)
			}
			text, err := DecodePNG(data)
			if err != nil {
				t.Fatalf("DecodePNG: %v", err)
			}
			if text != tc.text {
				t.Fatalf("decoded %q, want %q", text, tc.text)
			}
			l, err := Parse(text)
			if err != nil || l.Kind != tc.kind {
				t.Fatalf("Parse = %+v, %v; want kind %q", l, err, tc.kind)
			}
		})
	}
}

func TestDecodeJPEG(t *testing.T) {
	text := LoginText("http://localhost:8080", token43)
	data, err := PNG(text)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 60}); err != nil {
		t.Fatal(err)
	}
	got, err := DecodePNG(buf.Bytes())
	if err != nil || got != text {
		t.Fatalf("DecodePNG = %q, %v; want %q", got, err, text)
	}
}

func TestDecodeRefuses(t *testing.T) {
	blank := image.NewGray(image.Rect(0, 0, 64, 64))
	for i := range blank.Pix {
		blank.Pix[i] = 0xff
	}
	var blankPNG bytes.Buffer
	if err := png.Encode(&blankPNG, blank); err != nil {
		t.Fatal(err)
	}
	var hugePNG bytes.Buffer
	if err := png.Encode(&hugePNG, image.NewGray(image.Rect(0, 0, maxImageSide+1, 1))); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"nothing", nil, "not a readable PNG or JPEG"},
		{"text", []byte("http://localhost/m/bind#" + token22), "not a readable PNG or JPEG"},
		{"truncated", blankPNG.Bytes()[:blankPNG.Len()-20], "not a readable PNG or JPEG"},
		{"blank", blankPNG.Bytes(), "no QR code found in the image"},
		{"huge", hugePNG.Bytes(), "crop it"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodePNG(tc.data)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

func TestTerminal(t *testing.T) {
	s, err := Terminal(BindText("http://localhost:8080", token43))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(lines) < 10 || !strings.ContainsAny(s, "█▀▄") {
		t.Fatalf("got %d lines without block characters:\n%s", len(lines), s)
	}
	// What the terminal shows, as a picture of it, reads as the text: each character is two
	// modules, its upper and lower half, light where drawn.
	const scale = 4
	width := len([]rune(lines[0]))
	img := image.NewGray(image.Rect(0, 0, width*scale, 2*len(lines)*scale))
	for y, line := range lines {
		for x, r := range []rune(line) {
			for half, light := range [2]bool{r == '█' || r == '▀', r == '█' || r == '▄'} {
				if !light {
					continue
				}
				for dy := range scale {
					for dx := range scale {
						img.SetGray(x*scale+dx, (2*y+half)*scale+dy, color.Gray{Y: 255})
					}
				}
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if got, err := DecodePNG(buf.Bytes()); err != nil || got != BindText("http://localhost:8080", token43) {
		t.Fatalf("the terminal's code reads %q, %v", got, err)
	}
	if _, err := Terminal(strings.Repeat("x", 5000)); err == nil {
		t.Fatal("Terminal rendered 5000 bytes, more than a QR code holds")
	}
	if _, err := PNG(strings.Repeat("x", 5000)); err == nil {
		t.Fatal("PNG rendered 5000 bytes, more than a QR code holds")
	}
}

func FuzzParse(f *testing.F) {
	f.Add("http://localhost:8080/m/bind#" + token22)
	f.Add("https://mcert.example.tw/prefix/m/login#" + token43)
	f.Add(" http://[::1]:9/m/login#" + token22 + "\n")
	f.Add("http://localhost/m/bind#")
	f.Add("http://u@localhost/m/bind#" + token22)
	f.Add("http://localhost/?x/m/bind#" + token22)
	f.Fuzz(func(t *testing.T, text string) {
		l, err := Parse(text)
		if err != nil {
			return
		}
		var again string
		switch l.Kind {
		case KindBind:
			again = BindText(l.Base, l.Token)
		case KindLogin:
			again = LoginText(l.Base, l.Token)
		default:
			t.Fatalf("Parse(%q) gave kind %q", text, l.Kind)
		}
		if again != strings.TrimSpace(text) {
			t.Fatalf("Parse(%q) = %+v, which writes back as %q", text, l, again)
		}
		if !strings.HasPrefix(l.Base, l.Origin) {
			t.Fatalf("Parse(%q): base %q is not under origin %q", text, l.Base, l.Origin)
		}
	})
}

func FuzzDecodePNG(f *testing.F) {
	small, err := PNG(BindText("http://h", token22))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(small)
	tiny := image.NewRGBA(image.Rect(0, 0, 3, 2))
	tiny.Set(1, 1, color.Black)
	var tinyPNG, tinyJPEG bytes.Buffer
	if err := png.Encode(&tinyPNG, tiny); err != nil {
		f.Fatal(err)
	}
	if err := jpeg.Encode(&tinyJPEG, tiny, nil); err != nil {
		f.Fatal(err)
	}
	f.Add(tinyPNG.Bytes())
	f.Add(tinyJPEG.Bytes())
	f.Add([]byte("\x89PNG\r\n\x1a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = DecodePNG(data)
	})
}

func BenchmarkPNG(b *testing.B) {
	text := LoginText("https://mcert.example.tw", token43)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := PNG(text); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDecodePNGReadsEveryRendering pins a rendering the photo detector misses: decoding must
// never depend on which random token a QR code carries.
func TestDecodePNGReadsEveryRendering(t *testing.T) {
	for _, text := range []string{
		"http://localhost:40707/m/login#vXo1EJj9nFV70rJX2ELNpcy9U5V7icCrWV8g2upa2Yg",
		LoginText("https://mcert.example.tw", strings.Repeat("A", 43)),
	} {
		png, err := PNG(text)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := DecodePNG(png); err != nil || got != text {
			t.Errorf("DecodePNG(PNG(%q)) = %q, %v", text, got, err)
		}
	}
}

// TestPNGOfTheLargestCode checks that a code of the largest version still draws whole within
// the image, at one pixel a module.
func TestPNGOfTheLargestCode(t *testing.T) {
	data, err := PNG(strings.Repeat("a", 2300)) // version 40 at medium error correction
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil || img.Bounds().Dx() != 256 || img.Bounds().Dy() != 256 {
		t.Fatalf("got %v and %v, want a 256x256 PNG", img.Bounds(), err)
	}
	// 185 modules at one pixel, centred: 35 pixels of margin, then the finder pattern's dark
	// corner 4 modules (the quiet zone) in.
	if r, _, _, _ := img.At(35+4, 35+4).RGBA(); r != 0 {
		t.Errorf("the top left finder pattern is not where a whole code puts it")
	}
	if r, _, _, _ := img.At(35+184-4, 35+4).RGBA(); r != 0 {
		t.Errorf("the top right finder pattern is not where a whole code puts it")
	}
}
