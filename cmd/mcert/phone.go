package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/mcert/mcert/phone"
	"github.com/mcert/mcert/qr"
)

// phoneFlags are the flags every phone command shares.
type phoneFlags struct {
	keys string
}

func (p *phoneFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&p.keys, "keys", "phone.json", "the phone's key file (created on first bind)")
}

func (p *phoneFlags) client() (*phone.Client, error) {
	ph, err := phone.Open(p.keys)
	if err != nil {
		return nil, err
	}
	return &phone.Client{HTTP: &http.Client{Timeout: 30 * time.Second}, Phone: ph}, nil
}

// qrInput takes the QR code as a PNG file (--qr) or as its text (--text).
func qrInput(fs *flag.FlagSet) func() (string, error) {
	png := fs.String("qr", "", "PNG file of the QR code, e.g. saved from the page")
	text := fs.String("text", "", "the QR code's text instead of an image")
	return func() (string, error) {
		switch {
		case (*png == "") == (*text == ""):
			fmt.Fprintln(fs.Output(), "give exactly one of --qr FILE.png or --text URL")
			fs.Usage()
			return "", errUsage
		case *text != "":
			return *text, nil
		}
		data, err := os.ReadFile(*png)
		if err != nil {
			return "", err
		}
		return qr.DecodePNG(data)
	}
}

func runPhoneBind(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	var pf phoneFlags
	pf.define(fs)
	readQR := qrInput(fs)
	name := fs.String("name", "mcert phone", "the device name the account page shows")
	noUV := fs.Bool("no-uv", false, "answer without user verification (to see the server refuse it)")
	attestation := fs.String("attestation", "none", "attestation format: none or packed")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	text, err := readQR()
	if err != nil {
		return err
	}
	c, err := pf.client()
	if err != nil {
		return err
	}
	res, err := c.Bind(ctx, text, *name, phone.CreateOptions{NoUserVerification: *noUV, Attestation: *attestation})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "bound %q (device %s), valid until %s; keys in %s\n", res.DeviceName, res.DeviceID, res.ExpiresAt.Format(time.DateOnly), pf.keys)
	return nil
}

func runPhoneShow(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	var pf phoneFlags
	pf.define(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	p, err := phone.Open(pf.keys)
	if err != nil {
		return err
	}
	creds := p.Credentials()
	if len(creds) == 0 {
		fmt.Fprintf(stdout, "%s holds no credentials; bind with: mcert phone bind --keys %s --qr qr.png\n", pf.keys, pf.keys)
	}
	for _, c := range creds {
		fmt.Fprintf(stdout, "%s  device %s  rp %s  user %s  counter %d\n", c.Server, c.DeviceID, c.RPID, c.UserName, c.SignCount)
	}
	return nil
}

func runQRShow(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	readQR := qrInput(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	text, err := readQR()
	if err != nil {
		return err
	}
	if _, err := qr.Parse(text); err != nil {
		return err
	}
	art, err := qr.Terminal(text)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s\n%s\n", art, text)
	return nil
}
