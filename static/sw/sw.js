// NoChat's service worker. The server writes VERSION (this build), SHELL
// (the hashed URLs of the page's assets) and ICON above this line.
//
// It does three things:
//   - keeps the app shell and the last chat pages, so NoChat opens offline
//     showing the history it last had (and the sends the page queued, which
//     app.js keeps in localStorage and sends on reconnect);
//   - shows the Web Push notifications the server sends while this person
//     has no page open;
//   - opens a notification's message when it is clicked.
//
// Pages come from the network first, always: a new NoChat is seen at once,
// and the stored copy is only for when the network is down.

const SHELL_CACHE = 'nochat-shell-' + VERSION;
const PAGES = 'nochat-pages';

self.addEventListener('install', (ev) => {
  // A new version takes over at once; the page offers a reload (app.js).
  ev.waitUntil(caches.open(SHELL_CACHE).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (ev) => {
  ev.waitUntil((async () => {
    for (const key of await caches.keys()) {
      if (key.startsWith('nochat-shell-') && key !== SHELL_CACHE) await caches.delete(key);
    }
    await self.clients.claim();
  })());
});

// Only the chat pages are served from here: the account and admin pages
// are not for reading offline. A room's page is kept, a message's
// permalink (/r/{slug}/{id}) is not (there would be no end to them) but
// falls back to its room's page.
function chatPage(url) {
  return url.pathname === '/' || url.pathname.startsWith('/r/');
}
function roomOf(url) {
  const m = url.pathname.match(/^\/r\/[^/]+/);
  return m ? url.origin + m[0] : url.origin + '/';
}

self.addEventListener('fetch', (ev) => {
  const req = ev.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  if (req.mode === 'navigate' && chatPage(url)) {
    ev.respondWith(page(req, url));
  } else if (url.pathname.startsWith('/static/')) {
    ev.respondWith(asset(req));
  }
  // Everything else (the API, the socket, files) goes to the network as if
  // there were no worker: app.js knows what to do when it is down.
});

async function page(req, url) {
  const cache = await caches.open(PAGES);
  const key = roomOf(url);
  try {
    const res = await fetch(req);
    const html = (res.headers.get('Content-Type') || '').startsWith('text/html');
    if (res.ok && html && key === url.origin + url.pathname) await cache.put(key, res.clone());
    return res;
  } catch {
    // Offline: this room's page as last seen; else the chat's front page
    // if that shows this room. Never another room's page under this
    // room's address: what is typed there would go to the room shown.
    const kept = await usable(cache, key);
    if (kept) return kept;
    const front = await usable(cache, url.origin + '/');
    if (front && (key === url.origin + '/' || front.html.includes(` data-room-slug="${key.slice(key.lastIndexOf('/') + 1)}"`))) return front;
    return offline(url, key === url.origin + '/');
  }
}

// usable is the page kept under key, unless the sign-in it was kept for
// has run out (data-session-ends): on a shared device, one person's
// conversations are not for whoever opens the browser after them. Such a
// copy is dropped. The answer carries the page's text as html.
async function usable(cache, key) {
  const res = await cache.match(key);
  if (!res) return null;
  const html = await res.clone().text();
  const m = html.match(/ data-session-ends="(\d+)"/);
  if (m && Date.now() > Number(m[1])) {
    await cache.delete(key);
    return null;
  }
  res.html = html;
  return res;
}

// offline is the page of a room the worker has no copy of (front: of the
// chat's front page), the network being down: it says so.
function offline(url, front) {
  // Not kept (never opened here), or no longer (left, its sign-in over).
  const why = front ? 'this device has no copy of the chat to show' : 'this device has no copy of this room to show';
  const elsewhere = front ? '' : ', or <a href="/">open the chat as last seen</a>';
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark"><title>Offline · NoChat</title><link rel="icon" href="${ICON}">
<style>body{font:1rem/1.5 system-ui,sans-serif;max-width:32rem;margin:12vh auto;padding:0 1.25rem}h1{font-size:1.5rem}a{color:inherit;font-weight:600}</style></head>
<body><h1>You are offline</h1>
<p>NoChat cannot be reached, and ${why}.</p>
<p><a href="${url.pathname}">Try again</a> once the network is back${elsewhere}.</p></body></html>`;
  return new Response(html, { status: 503, headers: { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' } });
}

async function asset(req) {
  const kept = await caches.match(req);
  if (kept) return kept;
  return fetch(req);
}

self.addEventListener('push', (ev) => {
  let d = {};
  try { d = ev.data ? ev.data.json() : {}; } catch { /* shown plain */ }
  ev.waitUntil(self.registration.showNotification(d.title || 'NoChat', {
    body: d.body || '',
    tag: d.tag || undefined, // one notification per message, however it came
    icon: ICON,
    data: { url: d.url || '/' },
  }));
});

// A click opens the message: in a NoChat window already open, else a new
// one.
self.addEventListener('notificationclick', (ev) => {
  ev.notification.close();
  const target = new URL((ev.notification.data && ev.notification.data.url) || '/', self.location.origin);
  if (target.origin !== self.location.origin) return;
  ev.waitUntil((async () => {
    const wins = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    for (const w of wins) {
      if (new URL(w.url).origin !== target.origin) continue;
      await w.focus();
      if ('navigate' in w) await w.navigate(target.href);
      return;
    }
    await self.clients.openWindow(target.href);
  })());
});
