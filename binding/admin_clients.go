package binding

// Event types of the operator's changes to registered relying parties, whether made through
// the admin API or with mcert rp while the server is stopped.
const (
	EventAdminClientUpdate       = "admin_client_update" // its metadata: name, redirect URIs, claims, CIBA
	EventAdminClientDisable      = "admin_client_disable"
	EventAdminClientEnable       = "admin_client_enable"
	EventAdminClientDelete       = "admin_client_delete"
	EventAdminClientRotateSecret = "admin_client_rotate_secret"
)
