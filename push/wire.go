package push

// The phone API's bodies (PROTOCOL.md section 10), shared by the server and the phone client.

// KeyResponse answers GET /api/v1/phone/push/key.
type KeyResponse struct {
	PublicKey string `json:"public_key"` // the VAPID key: uncompressed P-256, base64url
}

// SubscribeRequest is the body of POST /api/v1/phone/push: the browser's PushSubscription as
// its toJSON() gives it.
type SubscribeRequest struct {
	Subscription Subscription `json:"subscription"`
}

// SubscribeResponse answers it: the endpoint kept.
type SubscribeResponse struct {
	Endpoint string `json:"endpoint"`
}
