package web

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/mcert/mcert"
)

// The pages' languages: Traditional Chinese as used in Taiwan, the default, and English.
const (
	langZH     = "zh-TW"
	langEN     = "en"
	langCookie = "mcert_lang"
)

// catalog holds every text of the pages, by language and key. Templates read it through their
// t function; scripts through the page's JSON data block (see page.messages). Every key is in
// both languages (TestCatalogComplete); {name} is a placeholder the scripts fill in. The texts
// of refusals are mcert's error catalog's, added as "error.<code>" and, for the card
// component's, "card.<code>" (withErrorTexts).
var catalog = withErrorTexts(map[string]map[string]string{
	langZH: {
		"app.name":             "mcert 行動自然人憑證",
		"lang.switch":          "English",
		"common.skip":          "跳到主要內容",
		"common.error":         "錯誤：",
		"common.network":       "無法連線伺服器，請檢查網路後再試一次。",
		"common.unknown_error": "發生錯誤（代碼 {code}）。請稍後再試，或聯絡客服。",
		"common.code":          "（代碼 {code}）",
		"common.validity":      "行動自然人憑證的效期為1年，且與自然人憑證各自獨立，所以以自然人憑證完成註冊後，如自然人憑證逾期、更換或遺失，在行動自然人憑證有效期間內並不會影響使用。",
		"common.free":          "行動自然人憑證註冊綁定無須任何費用。",

		"home.title":              "註冊與綁定",
		"home.prepare":            "準備項目：自然人憑證IC卡與讀卡機、已設定生物特徵（指紋或臉部辨識）的智慧型手機、電子信箱。",
		"home.login_heading":      "以自然人憑證登入",
		"home.login_intro":        "請將自然人憑證IC卡插入讀卡機，確認電腦已安裝並啟動「內政部憑證管理中心-跨平台網頁元件」，再輸入身分證統一編號與PIN碼，以自然人憑證登入。",
		"home.citizen_id_hint":    "英文字母1碼加數字9碼，例如 A123456789。",
		"home.pin":                "自然人憑證PIN碼",
		"home.pin_hint":           "PIN碼只傳給您電腦上的跨平台網頁元件，不會傳送到本網站。",
		"home.component_help":     "請先安裝「內政部憑證管理中心-跨平台網頁元件」並確認已啟動；可用元件的自我檢測頁確認讀卡機與IC卡。",
		"home.component_download": "下載跨平台網頁元件（內政部憑證管理中心）",
		"home.component_selftest": "元件自我檢測",
		"home.login_button":       "以自然人憑證登入",
		"home.signing":            "正在以自然人憑證簽章，請稍候…",
		"home.signed_in":          "已登入：{name}（{id}）",
		"home.logout":             "登出",
		"home.logged_out":         "已登出。",
		"home.register_heading":   "填寫電子信箱、手機號碼",
		"home.register_intro":     "以自然人憑證登入成功，請填寫電子信箱、手機號碼完成註冊。",
		"home.email":              "電子信箱",
		"home.email_verified":     "已驗證",
		"home.email_unverified":   "尚未驗證",
		"home.email_resend":       "重新寄送驗證信",
		"home.email_sent":         "已寄出驗證信至 {email}，請於24小時內點選信中的連結。",
		"home.phone":              "手機號碼",
		"home.phone_hint":         "09開頭共10碼，例如 0912345678。",
		"home.register_button":    "註冊",
		"home.registered":         "註冊完成，驗證信已寄至您的電子信箱。接下來請綁定您的行動裝置。",
		"home.account_heading":    "帳戶資訊",
		"home.name":               "姓名",
		"home.citizen_id":         "身分證統一編號",
		"home.account_status":     "帳戶狀態",
		"home.suspend_hint":       "手機遺失時，可立即暫停使用所有行動裝置；之後以自然人憑證登入即可恢復使用。",
		"home.suspend_button":     "暫停使用所有行動裝置",
		"home.reinstate_button":   "恢復使用",
		"home.suspended":          "已暫停使用：所有行動裝置都無法登入。",
		"home.reinstated":         "已恢復使用。",
		"home.devices_heading":    "已綁定的行動裝置",
		"home.no_devices":         "尚未綁定行動裝置。",
		"home.bind_button":        "綁定行動裝置",
		"home.bind_heading":       "綁定行動裝置",
		"home.bind_step1":         "開啟行動自然人憑證APP並點選「註冊裝置」，或開啟手機相機，掃描畫面上的QR Code。",
		"home.bind_step2":         "掃描後，確認您將啟用生物特徵識別進行驗證。",
		"home.bind_step3":         "驗證成功後，完成綁定新裝置。",
		"home.qr_alt":             "綁定用QR Code，請以手機掃描",
		"home.qr_expires":         "QR Code有效至",
		"home.qr_text":            "無法掃描？請在手機瀏覽器開啟此網址：",
		"home.bind_again":         "產生新的QR Code",
		"home.events_heading":     "安全紀錄",
		"home.events_intro":       "以自然人憑證登入、綁定、網站登入與裝置變更的紀錄，最新的在前。",
		"home.no_events":          "尚無紀錄。",
		"home.events_more":        "顯示更多紀錄",

		"account.active":    "正常使用",
		"account.suspended": "已暫停使用",

		"device.active":         "有效",
		"device.expired":        "已逾期",
		"device.revoked":        "已註銷",
		"device.created":        "綁定日期",
		"device.expires":        "有效期限至",
		"device.last_used":      "最近使用",
		"device.never_used":     "尚未使用",
		"device.expires_soon":   "此裝置將於 {date} 到期，請以自然人憑證重新綁定。",
		"device.clone_warning":  "此裝置於 {date} 登入時簽章計數異常，金鑰可能已遭複製，因此已暫停使用，無法再核准登入。請註銷此裝置，並以自然人憑證重新綁定手機。",
		"device.rename":         "重新命名",
		"device.name":           "裝置名稱",
		"device.save":           "儲存",
		"device.cancel":         "取消",
		"device.renamed":        "已重新命名為「{name}」。",
		"device.revoke":         "註銷",
		"device.revoke_confirm": "確定要註銷「{name}」嗎？註銷後此裝置無法再登入，且無法復原。",
		"device.revoke_yes":     "確定註銷",
		"device.revoked_done":   "已註銷「{name}」。",

		"bind.pending": "等待手機掃描QR Code…",
		"bind.scanned": "已掃描，請在手機上啟用生物特徵識別進行驗證…",
		"bind.bound":   "完成綁定新裝置：{name}，有效期限至 {date}。",
		"bind.expired": "QR Code已逾時，請產生新的QR Code。",

		"event.card_login":        "以自然人憑證登入",
		"event.account_create":    "註冊帳戶",
		"event.account_update":    "更新電子信箱或手機號碼",
		"event.bind":              "綁定行動裝置",
		"event.device_rename":     "重新命名裝置",
		"event.device_revoke":     "註銷裝置",
		"event.account_suspend":   "暫停使用",
		"event.account_reinstate": "恢復使用",
		"event.login":             "網站登入",
		"event.clone_warning":     "裝置可能遭複製（簽章計數異常）",
		"event.device_suspend":    "裝置因可能遭複製而暫停使用",
		"event.device":            "裝置：{name}",
		"outcome.ok":              "成功",
		"outcome.refused":         "遭拒絕",
		"outcome.denied":          "已在手機上拒絕",

		"login.title":     "行動自然人憑證登入",
		"login.intro":     "請以行動自然人憑證APP或手機相機掃描QR Code，登入「{client}」。",
		"login.qr_alt":    "登入用QR Code，請以手機掃描",
		"login.code":      "請確認手機上顯示的驗證碼與此相同：",
		"login.pending":   "等待掃描…",
		"login.scanned":   "已掃描，請確認手機上的驗證碼，並以生物特徵驗證…",
		"login.approved":  "登入成功，正在返回網站…",
		"login.denied":    "您已在手機上拒絕此登入，正在返回網站…",
		"login.expired":   "QR Code已逾時。",
		"login.refreshed": "QR Code已逾時，已重新產生。",

		"phone.app_note":      "已安裝行動自然人憑證APP的手機，掃描QR Code時會直接以APP開啟此網址；沒有APP，也可以在此頁以手機瀏覽器完成。",
		"phone.no_token":      "找不到QR Code的資料，請重新掃描電腦畫面上的QR Code。",
		"phone.no_webauthn":   "此瀏覽器不支援生物特徵驗證（WebAuthn），請更新瀏覽器或改用行動自然人憑證APP。",
		"phone.not_allowed":   "手機未完成生物特徵驗證，請確認已設定指紋或臉部辨識後再試一次。",
		"phone.invalid_state": "此手機已綁定您的帳戶，不需再次綁定。",
		"phone.security":      "此網址無法使用生物特徵驗證（網域不符），請聯絡服務管理者。",
		"phone.verifying":     "請依手機畫面完成生物特徵驗證…",

		"mbind.title":       "註冊裝置",
		"mbind.intro":       "此手機將綁定為您的行動自然人憑證，之後以生物特徵（指紋或臉部辨識）登入網站。",
		"mbind.device_hint": "用來在帳戶資訊中辨識此裝置，可自行修改。",
		"mbind.button":      "啟用生物特徵識別並綁定",
		"mbind.done":        "完成綁定新裝置",
		"mbind.expires":     "「{name}」的行動自然人憑證有效期限至 {date}（1年）。",
		"mbind.back":        "您可以關閉此頁，回到電腦畫面。",
		"mbind.android":     "Android 手機",
		"mbind.iphone":      "iPhone",
		"mbind.ipad":        "iPad",
		"mbind.other":       "行動裝置",

		"mlogin.title":          "確認登入",
		"mlogin.loading":        "正在讀取登入請求…",
		"mlogin.client":         "要求登入的網站",
		"mlogin.message":        "網站訊息",
		"mlogin.code":           "請確認電腦畫面上顯示的驗證碼與此相同。",
		"mlogin.deny_hint":      "若驗證碼不同，或您並未要求登入，請按「拒絕登入」。",
		"mlogin.origin":         "提出要求的電腦",
		"mlogin.origin_browser": "{browser}，{time}",
		"mlogin.origin_time":    "{time}",
		"mlogin.own_screen":     "請只核准您剛剛在自己的電腦螢幕上掃描的 QR Code。若是別人傳給您的 QR Code 或連結，請按「拒絕登入」。",
		"mlogin.approve":        "以生物特徵識別核准登入",
		"mlogin.deny":           "拒絕登入",
		"mlogin.approved":       "已核准登入，請回到電腦畫面。",
		"mlogin.denied":         "已拒絕此登入。",

		"demo.title":                   "示範網站",
		"demo.intro":                   "這是開發模式的示範網站（relying party）：它以 OpenID Connect 將您送到 mcert 登入，再讀取驗證過的 ID token。",
		"demo.login":                   "以行動自然人憑證登入",
		"demo.success":                 "登入成功",
		"demo.claims":                  "驗證過的 ID token 內容：",
		"demo.back":                    "回到示範網站",
		"demo.error_discovery":         "示範網站找不到 mcert 的 OpenID 設定",
		"demo.error_state":             "state 不符，請重新登入",
		"demo.error_failed":            "登入失敗",
		"maillink.verify":              "驗證電子信箱",
		"maillink.verify_confirm":      "確認您的電子信箱",
		"maillink.verify_confirm_text": "按下「確認」，即完成此電子信箱的驗證。此連結只能使用一次。",
		"maillink.verify_button":       "確認",
		"maillink.verify_done":         "電子信箱已驗證",
		"maillink.verify_done_text":    "您的電子信箱已完成驗證，網站將可得知此地址已經驗證。您可以關閉此頁。",
		"maillink.not_me":              "這不是我綁定的",
		"maillink.not_me_confirm":      "暫停您帳號的所有行動裝置？",
		"maillink.not_me_confirm_text": "如果剛才綁定的手機不是您本人的，請按下「暫停所有裝置」：您帳號的所有手機將立即無法登入或簽章，所有行動自然人憑證也一併廢止。",
		"maillink.not_me_button":       "暫停所有裝置",
		"maillink.not_me_done":         "已暫停您帳號的所有行動裝置",
		"maillink.not_me_done_text":    "所有手機已無法登入或簽章。接下來請：一、撥打客服專線說明情形；二、以自然人憑證登入本網站，移除不是您的手機；三、確認後「恢復使用」帳號，再重新綁定您自己的手機。請勿將綁定QR Code提供給任何人。",
		"errorpage.title":              "無法顯示此頁",
		"errorpage.not_found":          "找不到此頁面",
		"errorpage.problem":            "無法完成您的要求",
		"errorpage.home":               "回到首頁",
		"errorpage.back":               "若您是從其他網站前來登入，請回到該網站重新開始。",
		"footer.operator":              "營運單位：",
		"footer.support":               "客服專線：",
		"footer.privacy":               "隱私權政策",
		"footer.personal_data":         "個人資料蒐集告知",
		"home.session_ended":           "登入已逾時，請重新以自然人憑證登入。",
		"home.session_warning":         "為保護您的帳戶，登入將於 {time} 逾時。需要更多時間嗎？",
		"home.session_extend":          "延長登入時間",
		"home.session_extended":        "已延長登入時間至 {time}。",
		"bind.refused":                 "無法綁定：{reason}",
		"device.suspended":             "暫停使用",
		"event.client":                 "網站：{name}",
		"event.other_device":           "已移除的裝置",
		"event.separator":              "；",
		"home.personal_data_notice":    "個人資料蒐集告知：本服務蒐集您的電子信箱與手機號碼，用於寄送帳戶與安全通知、確認您的身分，並在您以行動自然人憑證登入網站時提供給該網站。",
		"home.personal_data_more":      "詳細內容請見個人資料蒐集告知。",
		"login.cancel":                 "取消登入並返回網站",
		"login.same_phone":             "在這支手機上登入",
		"login.same_phone_hint":        "正在用已綁定的手機瀏覽？直接在這支手機上以生物特徵核准，不必掃描 QR Code。",
		"login.cancelled":              "已取消登入，正在返回網站…",
		"login.refused":                "無法登入：{reason}正在返回網站…",
		"login.help":                   "如何以行動自然人憑證登入？",
		"login.help1":                  "在手機開啟行動自然人憑證APP（或相機），掃描此頁的QR Code。",
		"login.help2":                  "確認手機上顯示的網站名稱與驗證碼和此頁相同。",
		"login.help3":                  "以指紋或臉部辨識核准，此頁會自動返回網站。",
		"login.no_phone":               "還沒有綁定手機？",
		"login.register":               "以自然人憑證註冊並綁定行動裝置",
		"mbind.invite":                 "此手機將綁定至 {name}（{id}）的帳戶。",
		"mbind.device_sent":            "裝置名稱已送出；綁定後可在電腦的帳戶頁面修改。",
		"mbind.inbox_link":             "開啟此手機的登入要求收件匣",
		"minbox.title":                 "登入要求",
		"minbox.heading":               "等待您核准的登入要求",
		"minbox.device":                "此手機：{name}",
		"minbox.device_soon":           "此手機：{name}。綁定即將到期，請於到期前以自然人憑證重新綁定。",
		"minbox.empty":                 "目前沒有等待核准的登入要求。",
		"minbox.request":               "{client}要求登入（{time}前有效）",
		"minbox.sign_request":          "{client}要求簽章（{time}前有效）",
		"msign.title":                  "確認簽章",
		"msign.loading":                "正在讀取簽章請求…",
		"msign.client":                 "要求簽章的網站",
		"msign.text":                   "網站說明",
		"msign.documents":              "待簽署的文件",
		"msign.fingerprint_hint":       "每份文件後的代碼是其內容的指紋，可與網站上顯示的比對。",
		"msign.deny_hint":              "若文件不是您要簽署的，或您並未要求簽章，請按「拒絕簽章」。",
		"msign.approve":                "以生物特徵識別核准簽章",
		"msign.deny":                   "拒絕簽章",
		"msign.approved":               "已完成簽章，請回到網站。",
		"msign.denied":                 "已拒絕此簽章請求。",
		"minbox.refresh":               "重新整理",
		"minbox.failed":                "無法讀取登入要求，請稍後再試。",
		"minbox.no_device":             "這個瀏覽器尚未綁定為行動自然人憑證。請在電腦上以自然人憑證登入，按「綁定行動裝置」，再用這支手機掃描畫面上的QR Code。",
		"minbox.note":                  "網站以您的身分證統一編號提出登入要求時，會出現在這裡；請確認網站與訊息是您要的，再以生物特徵核准。",
		"common.notes":                 "說明",

		// The web app of the phone pages (the manifest) and its push notifications
		// (PROTOCOL.md section 10); "push." texts are the service worker's.
		"app.short_name":          "行動自然人憑證",
		"app.description":         "以生物特徵識別核准網站的登入與簽章要求。",
		"mbind.push_hint":         "在收件匣按「開啟通知」，網站要求您登入或簽章時，這支手機就會收到通知。",
		"minbox.push_heading":     "通知",
		"minbox.push_hint":        "開啟通知後，網站要求您登入或簽章時，這支手機會立即收到通知。",
		"minbox.push_on":          "開啟通知",
		"minbox.push_off":         "關閉通知",
		"minbox.push_enabled":     "已開啟通知",
		"minbox.push_working":     "正在開啟通知…",
		"minbox.push_disabled":    "已關閉通知。",
		"minbox.push_denied":      "未允許通知。請在瀏覽器的網站設定中允許本網站傳送通知，再按「開啟通知」。",
		"minbox.push_unsupported": "此瀏覽器無法接收通知，請開啟此頁查看登入要求。使用 iPhone 時，請先在 Safari 按「分享」→「加入主畫面」，再從主畫面開啟。",
		"minbox.push_failed":      "此瀏覽器無法開啟通知（{reason}），請稍後再試。",
		"minbox.push_server":      "無法開啟通知：{reason}",
		"minbox.push_off_server":  "這支手機已不再接收通知，但伺服器未能刪除登記：{reason}",
		"push.title":              "行動自然人憑證",
		"push.body":               "有網站要求您登入或簽章，請開啟收件匣查看。",
		"push.login_title":        "{client}要求登入",
		"push.sign_title":         "{client}要求簽章",
		"push.request_body":       "請於{time}前開啟，以生物特徵識別核准；若不是您要求的，請拒絕。",
	},
	langEN: {
		"app.name":             "mcert mobile citizen certificate",
		"lang.switch":          "中文",
		"common.skip":          "Skip to the main content",
		"common.error":         "Error: ",
		"common.network":       "Cannot reach the server; check the network and try again.",
		"common.unknown_error": "Something went wrong (code {code}). Try again later, or contact support.",
		"common.code":          " (code {code})",
		"common.validity":      "The mobile citizen certificate is valid for one year, independently of the citizen certificate IC card: once you have registered with the card, the card expiring, being replaced or lost does not affect the mobile certificate while it is valid.",
		"common.free":          "Registering and binding a mobile citizen certificate is free of charge.",

		"home.title":              "Registration and binding",
		"home.prepare":            "You need: your citizen certificate IC card and a card reader, a smartphone with a fingerprint or face unlock set up, and an email address.",
		"home.login_heading":      "Log in with your citizen certificate",
		"home.login_intro":        "Insert your citizen certificate IC card into the card reader, make sure MOICA's cross-platform web component is installed and running on this computer, then type your national ID and the card's PIN and log in.",
		"home.citizen_id_hint":    "One letter and nine digits, such as A123456789.",
		"home.pin":                "Citizen certificate PIN",
		"home.pin_hint":           "The PIN goes only to the web component on your computer, never to this website.",
		"home.component_help":     "Install MOICA's cross-platform web component and make sure it is running; its self-test page checks the card reader and the card.",
		"home.component_download": "Download the cross-platform web component (MOICA)",
		"home.component_selftest": "Component self-test",
		"home.login_button":       "Log in with your citizen certificate",
		"home.signing":            "Signing with your citizen certificate, please wait…",
		"home.signed_in":          "Logged in as {name} ({id})",
		"home.logout":             "Log out",
		"home.logged_out":         "You have logged out.",
		"home.register_heading":   "Enter your email and mobile number",
		"home.register_intro":     "You have logged in with your citizen certificate. Enter your email and mobile number to register.",
		"home.email":              "Email",
		"home.email_verified":     "verified",
		"home.email_unverified":   "not verified",
		"home.email_resend":       "Send the verification mail again",
		"home.email_sent":         "A verification mail is on its way to {email}; follow its link within 24 hours.",
		"home.phone":              "Mobile number",
		"home.phone_hint":         "10 digits starting with 09, for example 0912345678",
		"home.register_button":    "Register",
		"home.registered":         "You are registered, and a verification mail is on its way to your email address. Now bind your phone.",
		"home.account_heading":    "Account",
		"home.name":               "Name",
		"home.citizen_id":         "National ID number",
		"home.account_status":     "Account status",
		"home.suspend_hint":       "If you lose your phone, suspend all your phones at once; a later login with your citizen certificate lets you reinstate them.",
		"home.suspend_button":     "Suspend all phones",
		"home.reinstate_button":   "Reinstate",
		"home.suspended":          "Suspended: none of your phones can log in.",
		"home.reinstated":         "Reinstated.",
		"home.devices_heading":    "Bound phones",
		"home.no_devices":         "No phone is bound yet.",
		"home.bind_button":        "Bind a phone",
		"home.bind_heading":       "Bind a phone",
		"home.bind_step1":         "Open the mobile citizen certificate app and tap “Register this device”, or open the phone's camera, and scan the QR code on the screen.",
		"home.bind_step2":         "After scanning, confirm on the phone that you will use biometrics to verify.",
		"home.bind_step3":         "Once verified, the new phone is bound.",
		"home.qr_alt":             "QR code for binding; scan it with your phone",
		"home.qr_expires":         "The QR code is valid until",
		"home.qr_text":            "Cannot scan? Open this address in the phone's browser:",
		"home.bind_again":         "Make a new QR code",
		"home.events_heading":     "Security log",
		"home.events_intro":       "Card logins, bindings, website logins and device changes, newest first.",
		"home.no_events":          "Nothing recorded yet.",
		"home.events_more":        "Show more",

		"account.active":    "Active",
		"account.suspended": "Suspended",

		"device.active":         "Active",
		"device.expired":        "Expired",
		"device.revoked":        "Revoked",
		"device.created":        "Bound on",
		"device.expires":        "Valid until",
		"device.last_used":      "Last used",
		"device.never_used":     "never",
		"device.expires_soon":   "This phone expires on {date}; bind it again with your citizen certificate.",
		"device.clone_warning":  "On {date} a login from this phone had a signature counter that went backwards, so its key may have been copied. The phone is suspended and can no longer approve logins: revoke it, and bind the phone again with your citizen certificate.",
		"device.rename":         "Rename",
		"device.name":           "Device name",
		"device.save":           "Save",
		"device.cancel":         "Cancel",
		"device.renamed":        "Renamed to “{name}”.",
		"device.revoke":         "Revoke",
		"device.revoke_confirm": "Revoke “{name}”? It will never log in again; this cannot be undone.",
		"device.revoke_yes":     "Yes, revoke",
		"device.revoked_done":   "Revoked “{name}”.",

		"bind.pending": "Waiting for the phone to scan the QR code…",
		"bind.scanned": "Scanned: verify with biometrics on the phone…",
		"bind.bound":   "New device bound: {name}, valid until {date}.",
		"bind.expired": "The QR code has expired; make a new one.",

		"event.card_login":        "Logged in with the citizen certificate",
		"event.account_create":    "Registered",
		"event.account_update":    "Changed email or mobile number",
		"event.bind":              "Bound a phone",
		"event.device_rename":     "Renamed a phone",
		"event.device_revoke":     "Revoked a phone",
		"event.account_suspend":   "Suspended",
		"event.account_reinstate": "Reinstated",
		"event.login":             "Website login",
		"event.clone_warning":     "The phone may have been cloned (signature counter went back)",
		"event.device_suspend":    "Suspended a phone that may have been cloned",
		"event.device":            "phone: {name}",
		"outcome.ok":              "succeeded",
		"outcome.refused":         "refused",
		"outcome.denied":          "denied on the phone",

		"login.title":     "Log in with your mobile citizen certificate",
		"login.intro":     "Scan the QR code with the mobile citizen certificate app or the phone's camera to log in to “{client}”.",
		"login.qr_alt":    "QR code for logging in; scan it with your phone",
		"login.code":      "Check that the phone shows the same code:",
		"login.pending":   "Waiting for the phone to scan…",
		"login.scanned":   "Scanned: check the code on the phone and verify with biometrics…",
		"login.approved":  "Logged in; returning to the website…",
		"login.denied":    "You denied this login on the phone; returning to the website…",
		"login.expired":   "The QR code has expired.",
		"login.refreshed": "The QR code had expired; here is a new one.",

		"phone.app_note":      "On a phone with the mcert app, scanning the QR code opens this address in the app; without the app you can finish here in the phone's browser.",
		"phone.no_token":      "The QR code's data is missing; scan the QR code on the computer's screen again.",
		"phone.no_webauthn":   "This browser cannot verify biometrics (WebAuthn); update it or use the mcert app.",
		"phone.not_allowed":   "The phone did not complete biometric verification; make sure a fingerprint or face unlock is set up and try again",
		"phone.invalid_state": "This phone is already bound to your account; there is no need to bind it again.",
		"phone.security":      "Biometric verification cannot be used at this address (domain mismatch); contact the service's operator.",
		"phone.verifying":     "Follow the phone's prompt to verify with biometrics…",

		"mbind.title":       "Register this device",
		"mbind.intro":       "This phone will be bound as your mobile citizen certificate; you will then log in to websites with your fingerprint or face.",
		"mbind.device_hint": "Shown in your account to tell your phones apart; you may change it.",
		"mbind.button":      "Enable biometrics and bind",
		"mbind.done":        "New device bound",
		"mbind.expires":     "The mobile citizen certificate on “{name}” is valid until {date} (one year).",
		"mbind.back":        "You may close this page and return to the computer.",
		"mbind.android":     "Android phone",
		"mbind.iphone":      "iPhone",
		"mbind.ipad":        "iPad",
		"mbind.other":       "Phone",

		"mlogin.title":          "Confirm the login",
		"mlogin.loading":        "Reading the login request…",
		"mlogin.client":         "Website asking you to log in",
		"mlogin.message":        "Message from the website",
		"mlogin.code":           "Check that the computer's screen shows the same code",
		"mlogin.deny_hint":      "If the codes differ, or you did not ask to log in, press “Deny”.",
		"mlogin.origin":         "Asked by",
		"mlogin.origin_browser": "{browser}, at {time}",
		"mlogin.origin_time":    "at {time}",
		"mlogin.own_screen":     "Approve only a QR code you scanned from your own computer's screen just now. If someone sent you this code or link, press “Deny”.",
		"mlogin.approve":        "Approve with biometrics",
		"mlogin.deny":           "Deny",
		"mlogin.approved":       "Login approved; return to the computer.",
		"mlogin.denied":         "You denied this login.",

		"demo.title":                   "Demo website",
		"demo.intro":                   "A development-mode relying party: it sends you to mcert with OpenID Connect and shows the verified ID token.",
		"demo.login":                   "Log in with the mobile citizen certificate",
		"demo.success":                 "Logged in",
		"demo.claims":                  "The verified ID token's claims:",
		"demo.back":                    "Back to the demo website",
		"demo.error_discovery":         "The demo website cannot find mcert's OpenID configuration",
		"demo.error_state":             "The state does not match; log in again",
		"demo.error_failed":            "The login failed",
		"maillink.verify":              "Verify your email address",
		"maillink.verify_confirm":      "Confirm your email address",
		"maillink.verify_confirm_text": "Press Confirm to verify this email address. The link works once.",
		"maillink.verify_button":       "Confirm",
		"maillink.verify_done":         "Email address verified",
		"maillink.verify_done_text":    "Your email address is verified; websites you log in to can now see that it is. You may close this page.",
		"maillink.not_me":              "This was not me",
		"maillink.not_me_confirm":      "Suspend every phone of your account?",
		"maillink.not_me_confirm_text": "If the phone just bound is not yours, press Suspend all phones: no phone of your account can log in or sign any more, and their mobile certificates are revoked.",
		"maillink.not_me_button":       "Suspend all phones",
		"maillink.not_me_done":         "Every phone of your account is suspended",
		"maillink.not_me_done_text":    "No phone can log in or sign now. Next: 1. call the support line and tell them what happened; 2. log in here with your citizen card and remove the phone that is not yours; 3. reinstate the account and bind your own phone again. Never give the binding QR code to anyone.",
		"errorpage.title":              "This page cannot be shown",
		"errorpage.not_found":          "Page not found",
		"errorpage.problem":            "Your request could not be completed",
		"errorpage.home":               "Go to the home page",
		"errorpage.back":               "If a website sent you here to log in, go back to it and start again.",
		"footer.operator":              "Run by ",
		"footer.support":               "Helpline: ",
		"footer.privacy":               "Privacy policy",
		"footer.personal_data":         "Personal data notice",
		"home.session_ended":           "Your session has ended; log in with your citizen certificate again.",
		"home.session_warning":         "To protect your account, your login ends at {time}. Do you need more time?",
		"home.session_extend":          "Extend my login",
		"home.session_extended":        "Your login now lasts until {time}.",
		"bind.refused":                 "The phone cannot be bound: {reason}",
		"device.suspended":             "Suspended",
		"event.client":                 "website: {name}",
		"event.other_device":           "a removed device",
		"event.separator":              " · ",
		"home.personal_data_notice":    "Personal data notice: this service collects your email address and mobile number to send you account and security notices, to confirm who you are, and to give them to the websites you log in to with your mobile citizen certificate.",
		"home.personal_data_more":      "Read the whole personal data notice.",
		"login.cancel":                 "Cancel and return to the website",
		"login.same_phone":             "Log in on this phone",
		"login.same_phone_hint":        "Browsing on your bound phone? Approve with biometrics right here, without scanning a QR code.",
		"login.cancelled":              "The login was cancelled; returning to the website…",
		"login.refused":                "The login cannot go on: {reason} Returning to the website…",
		"login.help":                   "How do I log in with my mobile citizen certificate?",
		"login.help1":                  "Open the mobile citizen certificate app (or the camera) on your phone and scan this page's QR code.",
		"login.help2":                  "Check that the phone shows the same website name and code as this page.",
		"login.help3":                  "Approve with your fingerprint or face; this page then returns to the website.",
		"login.no_phone":               "No phone bound yet?",
		"login.register":               "Register with your citizen card and bind a phone",
		"mbind.invite":                 "This phone will be bound to the account of {name} ({id}).",
		"mbind.device_sent":            "The device name was sent; you can change it on the account page of the computer once the phone is bound.",
		"mbind.inbox_link":             "Open this phone's inbox of login requests",
		"minbox.title":                 "Login requests",
		"minbox.sign_request":          "{client} asks you to sign (valid until {time})",
		"msign.title":                  "Confirm the signature",
		"msign.loading":                "Reading the signing request…",
		"msign.client":                 "Website asking you to sign",
		"msign.text":                   "The website's description",
		"msign.documents":              "Documents to sign",
		"msign.fingerprint_hint":       "The code after each document is a fingerprint of its contents, to compare with the one the website shows.",
		"msign.deny_hint":              "If these are not the documents you mean to sign, or you did not ask to sign, press “Deny”.",
		"msign.approve":                "Sign with biometrics",
		"msign.deny":                   "Deny",
		"msign.approved":               "Signed; return to the website.",
		"msign.denied":                 "You denied this signing request.",
		"minbox.heading":               "Login requests waiting for your approval",
		"minbox.device":                "This phone: {name}",
		"minbox.device_soon":           "This phone: {name}. Its binding ends soon; bind it again with your citizen card before then.",
		"minbox.empty":                 "No login request is waiting.",
		"minbox.request":               "{client} asks you to log in (until {time})",
		"minbox.refresh":               "Refresh",
		"minbox.failed":                "The login requests could not be read; try again shortly.",
		"minbox.no_device":             "This browser is not bound as a mobile citizen certificate yet. On a computer, log in with your citizen card, press “Bind a phone”, and scan the QR code with this phone.",
		"minbox.note":                  "When a website asks for a login by your national ID, the request appears here; check the website and its message before you approve with your biometrics.",
		"common.notes":                 "Notes",

		"app.short_name":          "mcert",
		"app.description":         "Approve websites' login and signing requests with your biometrics.",
		"mbind.push_hint":         "In the inbox, press “Turn on notifications” to have this phone told when a website asks you to log in or sign.",
		"minbox.push_heading":     "Notifications",
		"minbox.push_hint":        "With notifications on, this phone is told at once when a website asks you to log in or sign.",
		"minbox.push_on":          "Turn on notifications",
		"minbox.push_off":         "Turn off notifications",
		"minbox.push_enabled":     "Notifications are on",
		"minbox.push_working":     "Turning on notifications…",
		"minbox.push_disabled":    "Notifications are off.",
		"minbox.push_denied":      "Notifications are not allowed. Allow this site's notifications in the browser's site settings, then press “Turn on notifications”.",
		"minbox.push_unsupported": "This browser cannot receive notifications; open this page to see your requests. On an iPhone, first add this page to the home screen in Safari (Share, then Add to Home Screen) and open it from there.",
		"minbox.push_failed":      "This browser could not turn on notifications ({reason}); try again later.",
		"minbox.push_server":      "Notifications could not be turned on: {reason}",
		"minbox.push_off_server":  "This phone no longer receives notifications, but the server could not delete its registration: {reason}",
		"push.title":              "Mobile citizen certificate",
		"push.body":               "A website asks you to log in or sign; open the inbox to see the request.",
		"push.login_title":        "{client} asks you to log in",
		"push.sign_title":         "{client} asks you to sign",
		"push.request_body":       "Open and approve with your biometrics before {time}. If you did not ask for it, deny it.",
	},
})

// withErrorTexts adds the texts of mcert's error catalog to the pages' texts.
func withErrorTexts(texts map[string]map[string]string) map[string]map[string]string {
	add := func(key string, t mcert.Text) {
		texts[langZH][key], texts[langEN][key] = t.ZH, t.EN
	}
	for _, c := range mcert.Codes() {
		add("error."+c.Name, c.Text)
	}
	for code, t := range mcert.ComponentTexts() {
		add("card."+code, t)
	}
	return texts
}

// refusal is the text of an error code in lang: the catalog's, or for a code it lacks a
// general sentence that names the code, for a support call. api.js does the same for the
// scripts.
func refusal(lang, code string) string {
	if text, ok := catalog[lang]["error."+code]; ok {
		return text
	}
	return strings.ReplaceAll(catalog[lang]["common.unknown_error"], "{code}", code)
}

// otherLang is the language the switch link offers.
func otherLang(lang string) string {
	if lang == langEN {
		return langZH
	}
	return langEN
}

// knownLang is the catalog's name of a language named in a query or cookie, or "".
func knownLang(s string) string {
	for lang := range catalog {
		if strings.EqualFold(s, lang) {
			return lang
		}
	}
	return ""
}

// chooseLang picks a page's language: the query's ?lang=, else the cookie, else the first
// language of Accept-Language we have (any Chinese reads Traditional Chinese, any English
// English), else Traditional Chinese.
func chooseLang(query, cookie, acceptLanguage string) string {
	if lang := knownLang(query); lang != "" {
		return lang
	}
	if lang := knownLang(cookie); lang != "" {
		return lang
	}
	type pref struct {
		lang string
		q    float64
	}
	var prefs []pref
	for _, part := range strings.Split(acceptLanguage, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			var err error
			if q, err = strconv.ParseFloat(v, 64); err != nil {
				continue
			}
		}
		primary, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
		switch {
		case q <= 0:
		case primary == "zh":
			prefs = append(prefs, pref{langZH, q})
		case primary == "en":
			prefs = append(prefs, pref{langEN, q})
		}
	}
	sort.SliceStable(prefs, func(i, j int) bool { return prefs[i].q > prefs[j].q })
	if len(prefs) > 0 {
		return prefs[0].lang
	}
	return langZH
}

// language is the request's language; a ?lang= choice is remembered in a cookie.
func (s *Server) language(c echo.Context) string {
	var cookie string
	if ck, err := c.Cookie(langCookie); err == nil {
		cookie = ck.Value
	}
	query := c.QueryParam("lang")
	lang := chooseLang(query, cookie, c.Request().Header.Get("Accept-Language"))
	if knownLang(query) != "" {
		c.SetCookie(&http.Cookie{
			Name: langCookie, Value: lang, Path: "/", MaxAge: 365 * 24 * 3600,
			HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: strings.HasPrefix(s.cfg.PublicURL, "https://"),
		})
	}
	return lang
}

// translator is the templates' t function for one language. An unknown key fails the page,
// and the tests render every page in every language.
func translator(lang string) func(key string) (string, error) {
	return func(key string) (string, error) {
		if text, ok := catalog[lang][key]; ok {
			return text, nil
		}
		return "", fmt.Errorf("no text %q in the %s catalog", key, lang)
	}
}

// messagesFor are the texts of lang whose keys start with one of prefixes: what a page's
// script needs.
func messagesFor(lang string, prefixes []string) map[string]string {
	out := map[string]string{}
	for key, text := range catalog[lang] {
		for _, p := range prefixes {
			if strings.HasPrefix(key, p) {
				out[key] = text
			}
		}
	}
	return out
}
