// The browser's time zone, for pages to show times in until the person chooses one on the
// account page (vault/timezones.py reads the cookie). Sent again only when it changed.
(function () {
  "use strict";
  var zone;
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (e) {
    return;
  }
  if (!zone) { return; }
  var current = document.cookie.split("; ").filter(function (c) { return c.indexOf("tz=") === 0; })[0];
  var value = encodeURIComponent(zone);
  if (current === "tz=" + value) { return; }
  var secure = window.location.protocol === "https:" ? "; Secure" : "";
  document.cookie = "tz=" + value + "; Path=/; Max-Age=31536000; SameSite=Lax" + secure;
})();
