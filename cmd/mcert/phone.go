package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
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

// scanFlags are the flags of the commands that answer a QR code.
type scanFlags struct {
	phoneFlags
	readQR func() (string, error)
	noUV   bool
}

func (f *scanFlags) define(fs *flag.FlagSet) {
	f.phoneFlags.define(fs)
	f.readQR = qrInput(fs)
	fs.BoolVar(&f.noUV, "no-uv", false, "answer without user verification (to see the server refuse it)")
}

// parse parses the flags and reads the QR code.
func (f *scanFlags) parse(fs *flag.FlagSet, args []string) (*phone.Client, string, error) {
	if err := parseFlags(fs, args); err != nil {
		return nil, "", err
	}
	text, err := f.readQR()
	if err != nil {
		return nil, "", err
	}
	c, err := f.client()
	return c, text, err
}

func runPhoneBind(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	var f scanFlags
	f.define(fs)
	name := fs.String("name", "mcert phone", "the device name the account page shows")
	attestation := fs.String("attestation", "none", "attestation format: none or packed")
	c, text, err := f.parse(fs, args)
	if err != nil {
		return err
	}
	res, err := c.Bind(ctx, text, *name, phone.CreateOptions{NoUserVerification: f.noUV, Attestation: *attestation})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "bound %q (device %s), valid until %s; keys in %s\n", res.DeviceName, res.DeviceID, res.ExpiresAt.Format(time.DateOnly), f.keys)
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

func runPhoneLogin(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	var f scanFlags
	f.define(fs)
	c, text, err := f.parse(fs, args)
	if err != nil {
		return err
	}
	res, err := c.Login(ctx, text, phone.GetOptions{NoUserVerification: f.noUV})
	if err != nil {
		return err
	}
	writeLogin(stdout, res)
	return nil
}

func runPhoneSign(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	var f scanFlags
	f.define(fs)
	c, text, err := f.parse(fs, args)
	if err != nil {
		return err
	}
	res, err := c.Sign(ctx, text, phone.GetOptions{NoUserVerification: f.noUV})
	if err != nil {
		return err
	}
	writeSign(stdout, res)
	return nil
}

// writeSign says what the citizen approved: the website, its text, and each document with the
// start of its digest, the fingerprint a phone shows.
func writeSign(w io.Writer, res phone.SignResult) {
	fmt.Fprintf(w, "%s: signed for %q: %q\n", res.Status, res.ClientName, res.Text)
	for _, d := range res.Documents {
		fmt.Fprintf(w, "  %s  (SHA-256 %s…)\n", d.Name, d.Digest[:min(len(d.Digest), 12)])
	}
}

func writeLogin(w io.Writer, res phone.LoginResult) {
	from := ""
	if res.Browser != "" {
		from = fmt.Sprintf(", asked by %s", res.Browser)
	}
	fmt.Fprintf(w, "%s: login to %q with code %s%s at %s\n", res.Status, res.ClientName, res.Code, from, res.RequestedAt.Local().Format(time.DateTime))
}

// inboxFlags are the flags of the commands that read the phone's inbox at one server.
type inboxFlags struct {
	phoneFlags
	server string
}

func (f *inboxFlags) define(fs *flag.FlagSet) {
	f.phoneFlags.define(fs)
	fs.StringVar(&f.server, "server", "", "the server's public URL, as in the QR code the phone was bound with (default: the server the key file says the phone is bound to, when it is one)")
}

// client is the phone, with f.server set to the server to ask: the one --server names, or
// else the one the phone was bound to, which its key file records.
func (f *inboxFlags) client() (*phone.Client, error) {
	c, err := f.phoneFlags.client()
	if err != nil {
		return nil, err
	}
	servers := c.Phone.Servers()
	switch given := strings.TrimRight(f.server, "/"); {
	case given != "" && len(servers) > 0 && !slices.Contains(servers, given):
		return nil, fmt.Errorf("this phone is bound to %s, not to %s; leave out --server, or give one of those", strings.Join(servers, ", "), given)
	case given != "":
		f.server = given
	case len(servers) == 1:
		f.server = servers[0]
	case len(servers) == 0:
		return nil, fmt.Errorf("this phone is not bound to any server yet; bind it first with: mcert phone bind --keys %s --text '<the QR code's text>'", f.keys)
	default:
		return nil, fmt.Errorf("this phone is bound to %d servers; choose one with --server: %s", len(servers), strings.Join(servers, ", "))
	}
	return c, nil
}

func runPhoneInbox(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	var f inboxFlags
	f.define(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := f.client()
	if err != nil {
		return err
	}
	requests, err := c.Inbox(ctx, f.server)
	if err != nil {
		return err
	}
	if len(requests) == 0 {
		fmt.Fprintln(stdout, "no requests are waiting")
	}
	for _, r := range requests {
		writeRequest(stdout, r)
	}
	return nil
}

func writeRequest(w io.Writer, r phone.InboxRequest) {
	if r.Kind == "sign" {
		names := make([]string, len(r.Documents))
		for i, d := range r.Documents {
			names[i] = d.Name
		}
		fmt.Fprintf(w, "%s  sign  %q  %q  %s  expires %s\n", r.Token, r.ClientName, r.Text, strings.Join(names, ", "), r.ExpiresAt.Local().Format(time.DateTime))
		return
	}
	fmt.Fprintf(w, "%s  login  %q  %q  code %s  expires %s\n", r.Token, r.ClientName, r.BindingMessage, r.Code, r.ExpiresAt.Local().Format(time.DateTime))
}

// answerFlags are the flags of phone approve and phone deny.
type answerFlags struct {
	inboxFlags
	token string
}

func (f *answerFlags) define(fs *flag.FlagSet) {
	f.inboxFlags.define(fs)
	fs.StringVar(&f.token, "token", "", "the request's token, from mcert phone inbox (default: the only request waiting)")
}

// parse parses the flags and picks the request to answer: the one given with --token, or else
// the only one waiting, so that the user never answers a request they have not chosen. An
// approval needs the request's kind, which the inbox tells: a token not in it is approved as a
// login's; a denial of a token given needs no inbox.
func (f *answerFlags) parse(ctx context.Context, fs *flag.FlagSet, args []string, approve bool) (*phone.Client, phone.InboxRequest, error) {
	if err := parseFlags(fs, args); err != nil {
		return nil, phone.InboxRequest{}, err
	}
	c, err := f.client()
	if err != nil || f.token != "" && !approve {
		return c, phone.InboxRequest{Token: f.token}, err
	}
	requests, err := c.Inbox(ctx, f.server)
	if err != nil {
		return nil, phone.InboxRequest{}, err
	}
	if f.token != "" {
		for _, r := range requests {
			if r.Token == f.token {
				return c, r, nil
			}
		}
		return c, phone.InboxRequest{Kind: "login", Token: f.token}, nil
	}
	switch len(requests) {
	case 1:
		return c, requests[0], nil
	case 0:
		return nil, phone.InboxRequest{}, fmt.Errorf("no request is waiting at %s; start one at the website first", f.server)
	}
	var list strings.Builder
	for _, r := range requests {
		writeRequest(&list, r)
	}
	return nil, phone.InboxRequest{}, fmt.Errorf("%d requests are waiting; choose one with --token:\n%s", len(requests), strings.TrimSuffix(list.String(), "\n"))
}

func runPhoneApprove(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	var f answerFlags
	f.define(fs)
	c, r, err := f.parse(ctx, fs, args, true)
	if err != nil {
		return err
	}
	if r.Kind == "sign" {
		res, err := c.ApproveSign(ctx, f.server, r.Token, phone.GetOptions{})
		if err != nil {
			return err
		}
		writeSign(stdout, res)
		return nil
	}
	res, err := c.Approve(ctx, f.server, r.Token, phone.GetOptions{})
	if err != nil {
		return err
	}
	writeLogin(stdout, res)
	return nil
}

func runPhoneDeny(ctx context.Context, fs *flag.FlagSet, args []string, stdout io.Writer) error {
	var f answerFlags
	f.define(fs)
	c, r, err := f.parse(ctx, fs, args, false)
	if err != nil {
		return err
	}
	if err := c.Deny(ctx, f.server, r.Token); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "denied")
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
