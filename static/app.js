// NoChat browser client: live messages over WebSocket (subprotocol nochat.v1),
// exactly-once sends through a persisted queue, history over REST.
// Plain JS, no build step. Text goes into the page with textContent only.
(() => {
  'use strict';

  const PROTOCOL = 'nochat.v1';
  const NAME_KEY = 'nochat.name';
  const PENDING_KEY = 'nochat.pending';
  const MAX_BACKOFF = 30000;
  const TYPING_EVERY = 3000; // send at most one typing frame per 3 s
  const TYPING_SHOWN = 4000; // show "x is typing…" this long after a frame
  const GROUP_GAP = 5 * 60 * 1000; // consecutive lines within 5 min form a block
  const NEAR_BOTTOM = 80; // px

  const $ = (id) => document.getElementById(id);
  const list = $('messages');
  const scroller = $('scroller');
  const olderBtn = $('load-older');
  const newerBtn = $('load-newer');
  const statusEl = $('status');
  const statusText = $('status-text');
  const statusLive = $('status-live');
  const onlineCount = $('online-count');
  const onlineUsers = $('online-users');
  const presenceEl = $('presence');
  const typingEl = $('typing');
  const form = $('composer');
  const nameInput = $('name');
  const msgInput = $('message');
  const jumpBtn = $('jump');
  const noticeEl = $('notice');
  const sendBtn = $('send');
  const counterEl = $('counter');

  // The server's numbers, from the page it rendered: messages per history
  // request, and characters in a message.
  const PAGE = Number(list.dataset.pageSize);
  const MAX_CHARS = Number(msgInput.dataset.maxLength);
  const COUNT_FROM = Math.floor(MAX_CHARS * 0.9); // show the counter from here
  // How long after sending one may edit a message (the server's -edit-window).
  const EDIT_WINDOW = Number(document.body.dataset.editWindow) || 15 * 60 * 1000;
  let isAdmin = 'admin' in document.body.dataset; // follows role frames

  let baseTitle = document.title || 'NoChat';

  const ERRORS = {
    empty: 'The message is empty.',
    too_long: 'The message is too long.',
    bad_name: 'That name is not allowed.',
    rate_limited: 'You are sending too fast.',
    store_failed: 'The server could not save it.',
    bad_request: 'The server did not understand it.',
  };

  // ---------- state ----------

  // The room this page shows; the socket carries every room we see, and
  // messages of the others count as unread in the sidebar.
  const room = {
    id: Number(document.body.dataset.roomId) || 1,
    slug: document.body.dataset.roomSlug || 'lobby',
  };
  const signedIn = 'signedIn' in document.body.dataset;
  let serverLatest = 0; // the newest id when the socket said hello
  let lastId = 0; // highest message id received; resume point for ?after=
  let ws = null;
  let ready = false; // hello received on the current socket
  let helloUser = ''; // our name as the server knows it
  let helloUserId = null; // our account's id; null for a guest
  let attempt = 0; // reconnect attempts since the last good connection
  let connectedAt = 0;
  let retryTimer = 0;
  let countdownTimer = 0;
  let retryAt = 0;
  let resyncing = null; // buffered message frames while history reloads
  let lastTypingSent = 0;
  let nickSent = '';
  let unread = 0;
  let hellos = 0; // hello frames this page has had
  const ownIds = new Set(); // ids the server acknowledged as ours
  const deletedIds = new Set(); // so a late ack cannot bring one back
  const typers = new Map(); // person (typerKey) -> { user, until }
  let typingTimer = 0;
  let noticeTimer = 0;
  let ended = ''; // the close reason that stopped the page, once one has (see onclose)
  // detached: the list shows the history around a permalink's message, and
  // newer messages than its last exist; live ones are not appended to it
  // (there would be a gap) but offered with newerBtn.
  let detached = 'hasNewer' in document.body.dataset;

  // ---------- storage (may be unavailable: private modes, policies) ----------

  // PAGES is the service worker's cache of pages (sw.js's PAGES), where
  // the page keeps rooms for offline use too; PAGES_OF is whose they are
  // (forgetOthersPages).
  const PAGES = 'nochat-pages';
  const PAGES_OF = 'nochat-pages-of';
  function getItem(key) {
    try { return localStorage.getItem(key); } catch { return null; }
  }
  function setItem(key, value) {
    try { localStorage.setItem(key, value); } catch { /* keep going in memory */ }
  }

  // The queue of sends not yet acknowledged, oldest first:
  // {cid, message, user, ts, sentAs}; sentAs is the name the server had for
  // us when the item was first sent. It lives in localStorage so a reload or
  // a crash does not lose a message; the server de-duplicates by sender (a
  // member's account, a guest's name) and cid, so re-sending is always safe
  // for a member, and for a guest under the same name.
  let queue = [];
  const knownCids = new Set(); // every cid this tab has owned

  function loadQueue() {
    let stored = [];
    try { stored = JSON.parse(getItem(PENDING_KEY) || '[]'); } catch { stored = []; }
    if (!Array.isArray(stored)) stored = [];
    queue = stored.filter((it) => it && typeof it.cid === 'string' && typeof it.message === 'string');
    queue.forEach((it) => knownCids.add(it.cid));
  }

  function saveQueue() {
    // Keep entries another tab added since we loaded; ours are in `queue`.
    let stored = [];
    try { stored = JSON.parse(getItem(PENDING_KEY) || '[]'); } catch { stored = []; }
    const others = Array.isArray(stored) ? stored.filter((it) => it && !knownCids.has(it.cid)) : [];
    setItem(PENDING_KEY, JSON.stringify(others.concat(queue)));
  }

  // ---------- helpers ----------

  // RFC 4122 version 4 UUID from crypto.getRandomValues, which (unlike
  // crypto.randomUUID) also exists on plain-http pages such as a Pi on the LAN.
  function uuid4() {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  // A person's colour, as views.colorOf picks it: a member's by account id
  // (it stays through a rename), a guest's by FNV-1a over the name's UTF-8
  // bytes; one of 8.
  const encoder = new TextEncoder();
  function colorFor(name, userId) {
    if (Number.isSafeInteger(userId)) return 'c' + (userId % 8);
    let h = 0x811c9dc5;
    for (const byte of encoder.encode(name)) {
      h ^= byte;
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    return 'c' + (h % 8);
  }

  // initials is views.Initials: the first letter or digit of each of the
  // first two words, capitalised, with its marks; else the first character.
  const MARKS = '[\\p{M}\\uFE00-\\uFE0F\\u{1F3FB}-\\u{1F3FF}]*';
  const WORD_INITIAL = new RegExp(`[\\p{L}\\p{N}]${MARKS}`, 'u');
  const FIRST_CHAR = new RegExp(`^.${MARKS}`, 'u');
  function initials(name) {
    const upper = (c) => {
      const u = c.toUpperCase();
      return [...u].length === 1 ? u : c; // ß stays ß, as in Go
    };
    let out = '';
    let n = 0;
    for (const word of name.trim().split(/\s+/)) {
      const m = WORD_INITIAL.exec(word);
      if (!m) continue;
      const [first, ...rest] = [...m[0]];
      out += upper(first) + rest.join('');
      if (++n === 2) break;
    }
    if (n === 0) out = FIRST_CHAR.exec(name.trim())?.[0] || '';
    return out;
  }

  // avatar makes views.Avatar: the circle of a person's initials, hollow
  // for a guest, or of the account's emoji (face: a bot's avatar). CSS
  // draws them from data-initials.
  function avatar(name, userId, face) {
    const el = document.createElement('span');
    setAvatar(el, name, userId, face);
    el.setAttribute('aria-hidden', 'true');
    return el;
  }
  function setAvatar(el, name, userId, face) {
    const guest = !Number.isSafeInteger(userId);
    el.className = 'avatar ' + (guest ? 'guest ' : '') + colorFor(name, userId) + (face ? ' face' : '');
    el.dataset.initials = face || initials(name);
  }

  const clockFmt = new Intl.DateTimeFormat(undefined, { hour: 'numeric', minute: '2-digit' });
  const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'short' });
  const hitFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

  // setTime shows a message's time: "now" and "N min" in its first hour
  // (kept up to date, see the timer below), its clock time after; the day
  // is the separator's above it.
  const relFmt = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto', style: 'short' });
  function setTime(el, date) {
    if (Number.isNaN(date.getTime())) return;
    const ago = Date.now() - date.getTime();
    let text = clockFmt.format(date);
    if (ago < 60 * 1000) {
      text = 'now';
      el.dataset.rel = '1';
    } else if (ago < 60 * 60 * 1000) {
      text = relFmt.format(-Math.floor(ago / 60000), 'minute');
      el.dataset.rel = '1';
    } else {
      delete el.dataset.rel;
    }
    el.textContent = text;
    el.dateTime = date.toISOString();
    el.title = fullFmt.format(date);
    nameLink(el.closest('a.permalink'));
  }
  setInterval(() => {
    for (const t of list.querySelectorAll('time[data-rel]')) setTime(t, new Date(t.dateTime));
  }, 30 * 1000);

  // dayLabel names a day as a separator shows it.
  const dayNameFmt = new Intl.DateTimeFormat(undefined, { weekday: 'long', month: 'long', day: 'numeric' });
  const dayLongFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'long' });
  function dayLabel(date) {
    const today = new Date();
    const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
    if (date.toDateString() === today.toDateString()) return 'Today';
    if (date.toDateString() === yesterday.toDateString()) return 'Yesterday';
    return date.getFullYear() === today.getFullYear() ? dayNameFmt.format(date) : dayLongFmt.format(date);
  }

  function separator(kind, label) {
    const li = document.createElement('li');
    li.className = 'sep ' + kind;
    li.setAttribute('role', 'separator');
    li.setAttribute('aria-label', label);
    li.textContent = label;
    return li;
  }

  function myName() { return nameInput.value.trim(); }

  function isMine(user, id, userId) {
    if (id && ownIds.has(id)) return true;
    // Signed in, ours are the account's: a guest's message under the same
    // name (from before accounts) is not.
    if (helloUserId !== null) return userId === helloUserId;
    const n = myName();
    return n !== '' && user === n;
  }

  function nearBottom() {
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < NEAR_BOTTOM;
  }

  function scrollToBottom() {
    scroller.scrollTop = scroller.scrollHeight;
    jumpBtn.hidden = true;
  }

  function msgIdOf(li) { return Number(li.dataset.id) || 0; }

  function realItems() { return list.querySelectorAll('li.msg[data-id]'); }

  function smallestId() {
    const first = list.querySelector('li.msg[data-id]');
    return first ? msgIdOf(first) : 0;
  }

  // The white space Go's unicode.IsSpace knows, which the server trims.
  const SPACE = '[\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';
  const EDGE_SPACE = new RegExp(`^${SPACE}+|${SPACE}+$`, 'gu');

  // serverLength counts a message's characters as the server does
  // (chat.cleanMessage): line endings become \n, other control characters
  // than \n and \t go, surrounding white space is trimmed, and what is left
  // is counted in code points (an emoji is one, not two UTF-16 units).
  function serverLength(text) {
    const clean = text.replace(/\r\n?/g, '\n')
      .replace(/\p{Cc}/gu, (c) => (c === '\n' || c === '\t' ? c : ''))
      .replace(EDGE_SPACE, '');
    return [...clean].length;
  }

  const numberFmt = new Intl.NumberFormat();

  // updateCounter shows how long the message is once it nears the limit,
  // and past it refuses to send, saying by how much: a long paste is never
  // cut short behind the writer's back.
  function updateCounter() {
    const n = serverLength(msgInput.value.trim());
    const over = n - MAX_CHARS;
    counterEl.hidden = !(n >= COUNT_FROM);
    counterEl.classList.toggle('over', over > 0);
    if (over > 0) {
      counterEl.textContent = `${numberFmt.format(over)} ${over === 1 ? 'character' : 'characters'} over the limit of ${numberFmt.format(MAX_CHARS)}`;
    } else {
      counterEl.textContent = `${numberFmt.format(n)} / ${numberFmt.format(MAX_CHARS)}`;
    }
    sendBtn.disabled = over > 0 || msgInput.disabled; // not here: the room's rights (applyRights)
    sendBtn.title = over > 0 ? 'Too long to send: shorten it first' : 'Send (Enter)';
    if (over > 0) msgInput.setAttribute('aria-invalid', 'true');
    else msgInput.removeAttribute('aria-invalid');
    return over <= 0;
  }

  // notice says text for a few seconds; a sticky one stays (the page has
  // nothing more to do until it is reloaded).
  function notice(text, sticky) {
    if (ended && !sticky) return; // the reason the page stopped stays in view
    noticeEl.textContent = text;
    noticeEl.hidden = false;
    clearTimeout(noticeTimer);
    if (!sticky) noticeTimer = setTimeout(() => { noticeEl.hidden = true; }, 5000);
  }

  function errorText(code, message) {
    if (code === 'bad_request' || !message) return ERRORS[code] || `Something went wrong (${code}).`;
    return message.charAt(0).toUpperCase() + message.slice(1) + (/[.!?]$/.test(message) ? '' : '.');
  }

  // ---------- rendering ----------

  // buildMessage makes the same markup as views.MessageItem.
  function buildMessage(m) {
    const li = document.createElement('li');
    li.className = 'msg';
    fillMessage(li, m);
    return li;
  }

  function fillMessage(li, m) {
    li.id = 'm-' + m.id;
    li.dataset.id = String(m.id);
    li.classList.remove('pending', 'failed');
    li.querySelector('.fail')?.remove();
    const member = Number.isSafeInteger(m.user_id);
    if (member) {
      li.dataset.userId = String(m.user_id);
      delete li.dataset.guest;
    } else {
      delete li.dataset.userId;
      li.dataset.guest = '';
    }
    const time = document.createElement('time');
    setTime(time, new Date(m.timestamp));
    // The time is the message's permalink, as in views.MessageItem.
    const link = document.createElement('a');
    link.className = 'permalink';
    link.href = permalinkOf(room.slug, m.id);
    link.append(time);
    // The server's rendering (links, the small markup), sanitized there:
    // one renderer for the history it renders and for live messages.
    const text = document.createElement('div');
    setText(text, m);
    li.replaceChildren(avatar(m.user, m.user_id, m.avatar), byline(m.user, m.user_id, m.bot === true), link, text);
    if (m.reply_to) text.before(quoteButton(m.reply_to));
    if (m.file) text.after(fileBlock(m.file));
    li.classList.toggle('bare', !!m.file && m.message === ''); // views.msgClass
    li.dataset.source = m.message; // what an edit starts from
    setEdited(li, m.edited_at);
    setReactions(li, m.reactions);
    li.classList.toggle('mine', isMine(m.user, m.id, m.user_id));
    addActions(li);
  }

  // setText fills a message's text: the server's HTML when there is some,
  // else the text as text.
  function setText(el, m) {
    if (typeof m.html === 'string' && m.html !== '') {
      el.className = 'text rich';
      el.innerHTML = m.html;
    } else {
      el.className = 'text';
      el.textContent = m.message;
    }
    markMyMentions(el);
  }

  // markMyMentions highlights the mentions of me (and of everyone) more.
  function markMyMentions(root) {
    for (const span of root.querySelectorAll('.mention[data-user-id]')) {
      const id = span.dataset.userId;
      span.classList.toggle('me', id === '0' || (helloUserId !== null && id === String(helloUserId)));
    }
  }

  // quoteButton is a reply's one-line quote of what it answers, as
  // views.MessageItem has it: a button that shows the original.
  function quoteButton(q) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'quote';
    b.dataset.id = String(q.id);
    if (q.deleted || typeof q.message !== 'string') {
      b.classList.add('deleted');
      b.textContent = 'Original message deleted';
      return b;
    }
    const who = document.createElement('span');
    who.className = 'q-user';
    who.textContent = q.user || '';
    const what = document.createElement('span');
    what.className = 'q-text';
    what.textContent = q.message;
    b.append(who, ' ', what);
    b.setAttribute('aria-label', `In reply to ${q.user}: ${q.message}. Show it`);
    return b;
  }

  // showMessage brings message id into view, highlighted; one that is not
  // on the page opens at its permalink, with the history around it.
  function showMessage(id) {
    const li = $('m-' + id);
    if (!li) { switchRoom(room.slug, true, id); return; } // the history around it, without a reload
    li.scrollIntoView({ block: 'center', behavior: 'smooth' });
    li.classList.remove('flash');
    void li.offsetWidth; // restart the animation
    li.classList.add('flash');
  }

  // setEdited shows that a message was edited, and when, as
  // views.MessageItem does; null: never.
  function setEdited(li, at) {
    let mark = li.querySelector('.edited');
    if (!Number.isFinite(at) || at <= 0) { mark?.remove(); return; }
    if (!mark) {
      mark = document.createElement('span');
      mark.className = 'edited';
      mark.textContent = 'edited';
      (li.querySelector('a.permalink') || li.querySelector('time'))?.after(mark); // as views.MessageItem: after the time's link
    }
    mark.title = 'Edited ' + new Date(at).toLocaleString();
  }

  // setReactions shows a message's reactions as views.Reactions does, ours
  // pressed.
  function setReactions(li, reactions) {
    li.querySelector('.reactions')?.remove();
    if (!Array.isArray(reactions) || reactions.length === 0) return;
    const row = document.createElement('div');
    row.className = 'reactions';
    for (const r of reactions) {
      if (!r || typeof r.emoji !== 'string' || !Number.isSafeInteger(r.count)) continue;
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'reaction';
      b.dataset.emoji = r.emoji;
      b.dataset.userIds = (Array.isArray(r.user_ids) ? r.user_ids : []).join(',');
      b.title = (Array.isArray(r.users) ? r.users : []).join(', ');
      const e = document.createElement('span');
      e.className = 'emoji';
      e.textContent = r.emoji;
      const n = document.createElement('span');
      n.className = 'n';
      n.textContent = String(r.count);
      b.append(e, n);
      row.append(b);
    }
    const fail = li.querySelector('.fail');
    if (fail) fail.before(row); else li.append(row);
    markMyReactions(li);
  }

  // markMyReactions presses the reactions that are ours.
  function markMyReactions(root) {
    for (const b of root.querySelectorAll('button.reaction')) {
      const mine = helloUserId !== null && b.dataset.userIds.split(',').includes(String(helloUserId));
      b.setAttribute('aria-pressed', String(mine));
      const who = b.title || 'no one';
      b.setAttribute('aria-label', `${b.dataset.emoji} ${b.querySelector('.n')?.textContent || ''}: ${who}${mine ? '' : '. React'}`);
    }
  }

  // permalinkOf is the page address that opens message id in its room.
  function permalinkOf(slug, id) {
    return '/r/' + encodeURIComponent(slug) + '/' + id;
  }

  // focusMessage scrolls the list to message id and marks it; false when
  // it is not on the page.
  function focusMessage(id, take) {
    const li = $('m-' + id);
    if (!li) return false;
    for (const el of list.querySelectorAll('li.msg.focus')) el.classList.remove('focus');
    li.classList.add('focus');
    li.scrollIntoView({ block: 'center' });
    jumpBtn.hidden = true;
    // Opened from elsewhere (a search, a notification, the address): the
    // keyboard is at the message too.
    if (take) visit(li);
    return true;
  }

  // byline is a message's author: the name in the person's colour, and a
  // guest's tag, or a bot's.
  function byline(name, userId, bot) {
    const by = document.createElement('div');
    by.className = 'by';
    const user = document.createElement('span');
    user.className = 'user ' + colorFor(name, userId);
    user.textContent = name;
    by.append(user);
    if (!Number.isSafeInteger(userId)) {
      const tag = document.createElement('span');
      tag.className = 'tag';
      tag.textContent = 'guest';
      by.append(' ', tag); // the space the server's markup has: "zed guest" read aloud
    } else if (bot) {
      const tag = document.createElement('span');
      tag.className = 'tag';
      tag.textContent = 'bot';
      by.append(' ', tag);
    }
    return by;
  }

  // userIdOf is the account of a message on the page; null for a guest's.
  function userIdOf(li) {
    const id = Number(li.dataset.userId);
    return li.dataset.userId && Number.isSafeInteger(id) ? id : null;
  }

  function buildPending(item) {
    const li = document.createElement('li');
    li.className = 'msg mine pending';
    li.dataset.cid = item.cid;
    const user = byline(item.user || helloUser || 'you', helloUserId);
    const state = document.createElement('span');
    state.className = 'state';
    state.title = 'Not delivered yet';
    const clock = document.createElement('span');
    clock.className = 'clock';
    clock.setAttribute('aria-hidden', 'true');
    const label = document.createElement('span');
    label.textContent = 'sending';
    state.append(clock, label);
    const text = document.createElement('div');
    text.className = 'text';
    text.textContent = item.message;
    li.append(user, state);
    if (item.quote) li.append(quoteButton(item.quote));
    li.append(text);
    return li;
  }

  function markFailed(li, item, reason) {
    li.classList.remove('pending');
    li.classList.add('failed');
    li.querySelector('.fail')?.remove();
    const fail = document.createElement('div');
    fail.className = 'fail';
    const why = document.createElement('span');
    why.className = 'reason';
    const strong = document.createElement('strong');
    strong.textContent = 'Not sent. ';
    why.append(strong, reason);
    const retry = document.createElement('button');
    retry.type = 'button';
    retry.className = 'retry';
    retry.textContent = 'Retry';
    const dismiss = document.createElement('button');
    dismiss.type = 'button';
    dismiss.className = 'dismiss';
    dismiss.textContent = 'Dismiss';
    fail.append(why, retry, dismiss);
    li.append(fail);
    li.dataset.message = item.message;
  }

  function pendingEl(cid) {
    for (const li of list.querySelectorAll('li.msg[data-cid]')) {
      if (li.dataset.cid === cid) return li;
    }
    return null;
  }

  // ---------- where the keyboard goes ----------

  const TABBABLE = 'a[href], button:not([disabled]), input:not([disabled]), textarea:not([disabled]), select:not([disabled]), [tabindex]:not([tabindex="-1"])';
  const shown = (el) => el.checkVisibility?.() !== false;
  // stopsIn is where Tab stops inside el, in order.
  const stopsIn = (el) => [...el.querySelectorAll(TABBABLE)].filter(shown);
  const isMsg = (el) => !!el && el.matches('li.msg') && !el.hidden;
  // msgBeside is the nearest message after li (step nextElementSibling)
  // or before it that is, and that ok takes.
  function msgBeside(li, step, ok = isMsg) {
    let el = li[step];
    while (el && !(isMsg(el) && ok(el))) el = el[step];
    return el;
  }
  // typingPlace is where the keyboard goes when nothing nearer is left:
  // the message box, or the messages when one may not post.
  const typingPlace = () => (msgInput.disabled ? scroller : msgInput);

  // removeKeepingFocus takes messages off the list; the keyboard's focus
  // on one of them goes to the nearest message below (or above) that
  // stays, or the message box, not to the page's start.
  function removeKeepingFocus(lis) {
    const gone = new Set(lis.filter(Boolean));
    const at = [...gone].find((li) => li.contains(document.activeElement));
    const stays = (el) => el.dataset.id !== undefined && !gone.has(el);
    const next = at && (msgBeside(at, 'nextElementSibling', stays) || msgBeside(at, 'previousElementSibling', stays));
    for (const li of gone) li.remove();
    if (!at) return;
    if (next) visit(next);
    else typingPlace().focus();
  }

  // placeReal puts a stored message in id order, above the pending/failed
  // block that always stays at the bottom.
  function placeReal(li, id) {
    li.remove();
    let after = list.lastElementChild;
    while (after && (!after.dataset.id || msgIdOf(after) > id)) {
      after = after.previousElementSibling;
    }
    if (after) after.after(li); else list.prepend(li);
  }

  // regroup marks lines that continue a block from the same person, so the
  // name is shown once per block.
  // It also puts a separator above each day's first message.
  function regroup() {
    for (const sep of list.querySelectorAll('li.sep.day')) sep.remove();
    let prev = null;
    let prevDay = '';
    for (const li of [...list.children]) {
      if (li.classList.contains('sep')) { prev = null; continue; } // the new divider starts a block
      const user = li.dataset.userId ? 'id:' + li.dataset.userId : 'name:' + li.querySelector('.user')?.textContent;
      const t = Date.parse(li.querySelector('time')?.dateTime || '') || Date.now();
      const day = new Date(t).toDateString();
      if (day !== prevDay) {
        const sep = separator('day', dayLabel(new Date(t)));
        const above = li.previousElementSibling;
        (above && above.classList.contains('new') ? above : li).before(sep);
        prevDay = day;
        prev = null;
      }
      const cont = prev !== null && prev.user === user && prev.mine === li.classList.contains('mine') &&
        t - prev.t < GROUP_GAP && !li.classList.contains('failed');
      li.classList.toggle('cont', cont);
      prev = { user, t, mine: li.classList.contains('mine') };
    }
  }

  // showNewDivider marks where the messages after lastRead begin (not our
  // own), and reports whether there is such a place. It stays while the
  // room is shown, as the place one came back to.
  const jumpUnread = $('jump-unread');
  let dividerRead = 0; // the read point the divider was shown for; 0: none
  function showNewDivider(lastRead) {
    list.querySelector('li.sep.new')?.remove();
    jumpUnread.hidden = true;
    dividerRead = 0;
    if (!signedIn || !lastRead) return false;
    const first = firstUnread(lastRead);
    if (!first) return false;
    first.before(separator('new', 'New'));
    dividerRead = lastRead;
    labelNewDivider();
    regroup();
    return true;
  }

  // labelNewDivider says so when unread messages older than the page sit
  // above the divider, not loaded yet. When the oldest message shown is
  // unread and older ones exist, the one just before it says whether they
  // were read (one message asked for).
  async function labelNewDivider() {
    const divider = list.querySelector('li.sep.new');
    if (!divider) return;
    const label = (more) => {
      const text = more ? 'New · older unread messages above' : 'New';
      divider.textContent = text;
      divider.setAttribute('aria-label', text);
    };
    label(false);
    const first = smallestId();
    if (olderBtn.hidden || divider !== list.querySelector('li.sep.new, li.msg[data-id]') || first <= dividerRead) return;
    const gen = listGen, read = dividerRead;
    try {
      const [m] = await fetchMessages(`${historyURL()}?before=${first}&limit=1`);
      if (gen !== listGen || read !== dividerRead || smallestId() !== first || !divider.isConnected) return; // things moved on
      label(!!m && m.id > read && !isMine(m.user, m.id, m.user_id));
    } catch { /* the line says New, as it did */ }
  }

  // firstUnread is the first message on the page after lastRead, not ours.
  function firstUnread(lastRead) {
    return [...realItems()].find((li) => msgIdOf(li) > lastRead && !li.classList.contains('mine'));
  }

  // moveNewDivider puts the divider back above the first unread message
  // once older messages are on the page: a room opened with more unread
  // than a page shows it above the first message loaded, and the older
  // unread ones loaded later belong under it too.
  function moveNewDivider() {
    const divider = list.querySelector('li.sep.new');
    if (!divider || !dividerRead) return;
    const first = firstUnread(dividerRead);
    if (first && first !== divider.nextElementSibling) first.before(divider);
    labelNewDivider();
  }

  // UNREAD_PAGES is how many older pages (50 messages each) a room opened
  // with more unread than its page loads to reach its first unread.
  const UNREAD_PAGES = 4;
  let loadingUnread = -1; // the list whose unread pages load: nothing is marked read meanwhile

  // openAtUnread scrolls a room just opened to its first unread message
  // when there is one and not all of it fits below; else to the bottom.
  // With more unread than the page holds, the older pages load first (up
  // to UNREAD_PAGES), so that the room opens at its first unread, as one
  // reads, rather than at the newest page's top.
  async function openAtUnread(lastRead) {
    const gen = listGen;
    if (signedIn && lastRead && !olderBtn.hidden && smallestId() > lastRead) {
      loadingUnread = gen;
      try {
        for (let i = 0; i < UNREAD_PAGES && !olderBtn.hidden && smallestId() > lastRead; i++) {
          // Nothing added: it failed (and said so), or another list is
          // shown now (another room, a permalink), which this is not for.
          if (!(await loadOlder()) || gen !== listGen) break;
        }
      } finally {
        if (loadingUnread === gen) loadingUnread = -1;
      }
      if (gen !== listGen) return;
    }
    if (!showNewDivider(lastRead)) { scrollToBottom(); markRead(); return; }
    const divider = list.querySelector('li.sep.new');
    scrollToBottom();
    if (topIn(divider) < scroller.scrollTop) {
      scroller.scrollTop = Math.max(0, topIn(divider) - 16);
      jumpBtn.hidden = false;
    }
    markRead();
  }

  // topIn is el's top in the scroller's content.
  function topIn(el) {
    return el.getBoundingClientRect().top - scroller.getBoundingClientRect().top + scroller.scrollTop;
  }

  function updateJumpUnread() {
    const divider = list.querySelector('li.sep.new');
    jumpUnread.hidden = !divider || topIn(divider) + divider.offsetHeight > scroller.scrollTop;
  }
  jumpUnread.addEventListener('click', () => {
    const divider = list.querySelector('li.sep.new');
    if (divider) scroller.scrollTop = Math.max(0, topIn(divider) - 16);
    jumpUnread.hidden = true;
  });

  function retint() {
    for (const li of realItems()) {
      const user = li.querySelector('.user')?.textContent || '';
      li.classList.toggle('mine', isMine(user, msgIdOf(li), userIdOf(li)));
    }
    regroup();
  }

  // ---------- incoming messages ----------

  function validMessage(m) {
    return m && Number.isSafeInteger(m.id) && m.id > 0 && typeof m.message === 'string';
  }

  function normalize(m) {
    return {
      id: m.id,
      user: typeof m.user === 'string' ? m.user : '',
      user_id: Number.isSafeInteger(m.user_id) ? m.user_id : null,
      bot: m.bot === true,
      avatar: typeof m.avatar === 'string' && m.avatar.length <= 32 ? m.avatar : '',
      message: m.message,
      timestamp: typeof m.timestamp === 'number' ? m.timestamp : Date.now(),
      room: Number.isSafeInteger(m.room) && m.room > 0 ? m.room : 1,
      html: typeof m.html === 'string' ? m.html : '',
      edited_at: Number.isFinite(m.edited_at) ? m.edited_at : null,
      reactions: Array.isArray(m.reactions) ? m.reactions : [],
      reply_to: m.reply_to && Number.isSafeInteger(m.reply_to.id) ? m.reply_to : null,
      mentions: Array.isArray(m.mentions) ? m.mentions : [],
      file: validFile(m.file) ? m.file : null,
    };
  }

  function onMessage(raw) {
    if (!validMessage(raw)) return;
    if (resyncing) { resyncing.push(['message', raw]); return; }
    const m = normalize(raw);
    if (m.room !== room.id) {
      // Another room's: counted in the list, shown when that room is.
      if (m.id <= lastId) return;
      lastId = m.id;
      if (m.user_id === null || m.user_id !== helloUserId) otherRoomMessage(m);
      return;
    }
    const existing = $('m-' + m.id);
    if (existing) {
      // Already shown, from an ack that came first: take the server's
      // authoritative name and time, but never show it twice. Not while
      // it is being edited (it can be, the moment its ack came): filled
      // again, it would lose its edit box, and what was typed there.
      if (existing.dataset.provisional && !existing.classList.contains('editing')) {
        delete existing.dataset.provisional;
        fillMessage(existing, m);
        regroup();
      }
      lastId = Math.max(lastId, m.id);
      return;
    }
    if (m.id <= lastId) return;
    lastId = m.id;
    if (deletedIds.has(m.id)) return;
    if (detached) { newerBtn.hidden = false; return; } // below a gap: offered, not shown
    typers.delete(typerKey(m.user, m.user_id));
    renderTyping();

    // Where the reader was before this burst's first message.
    const stick = settling ? settling.stick : nearBottom();
    // Our own message may be broadcast before its ack: adopt the matching
    // pending line instead of adding a second copy. If the guess is wrong
    // (same text from another tab), the line still shows a real message, and
    // the ack will add its own.
    const adopted = adoptPending(m);
    const li = adopted || buildMessage(m);
    if (adopted) fillMessage(li, m);
    placeReal(li, m.id);
    settleSoon(stick, adopted);
    if (document.hidden && !adopted && !li.classList.contains('mine') && levelOf(room.id) !== 'none') {
      unread++;
      updateBadge();
    }
    if (!adopted) announce(m);
  }

  // A burst (a batch frame, the catch-up after a long outage) brings many
  // messages at once. The list is regrouped, and scrolled, once for all of
  // them before the next paint: once a message, each a pass over the whole
  // list and a layout, a page fed a few thousand froze for minutes.
  let settling = null; // { stick, follow } while a settle is due
  function settleSoon(stick, adopted) {
    if (!settling) {
      settling = { stick, follow: false };
      const settle = () => {
        const s = settling;
        settling = null;
        if (!s) return; // the room changed meanwhile: its own showing placed it
        if (s.follow) trimOldest();
        regroup();
        if (s.follow) {
          scrollToBottom();
          markRead();
        } else {
          jumpBtn.hidden = false;
        }
      };
      // A hidden page paints no frames: a timer, which it still runs.
      if (document.hidden) setTimeout(settle, 50); else requestAnimationFrame(settle);
    }
    if (stick || adopted) settling.follow = true;
  }

  // KEEP_SHOWN bounds the messages a page holds while its reader follows
  // the newest: a busy room, or the catch-up after a long outage, would
  // otherwise grow the list without end (tens of thousands of lines made a
  // page unresponsive for minutes). The oldest go from the top, out of
  // sight, and "Load older messages" brings them back.
  const KEEP_SHOWN = 1000;
  function trimOldest() {
    if (loadingOlder) return; // older ones on their way: they would land past a gap
    let extra = list.querySelectorAll('li.msg[data-id]').length - KEEP_SHOWN;
    if (extra <= 0) return;
    while (extra > 0 && list.firstElementChild) {
      const li = list.firstElementChild;
      if (li.matches('li.msg[data-id]')) extra--;
      else if (li.matches('li.msg')) break; // a line not sent yet: never
      li.remove(); // separators go with the messages below them
    }
    olderBtn.hidden = false;
  }

  function adoptPending(m) {
    for (const item of queue) {
      const li = pendingEl(item.cid);
      if (!li || li.dataset.id || !li.classList.contains('pending')) continue;
      const sameUser = m.user === helloUser || m.user === item.user || m.user === myName();
      if (sameUser && item.message === m.message) {
        ownIds.add(m.id);
        return li; // keeps its data-cid until the ack
      }
    }
    return null;
  }

  function onAck(d) {
    if (!d || typeof d.cid !== 'string') return;
    clearTimeout(retryTimers.get(d.cid));
    retryTimers.delete(d.cid);
    const item = queue.find((it) => it.cid === d.cid);
    queue = queue.filter((it) => it.cid !== d.cid);
    saveQueue();
    const id = d.id;
    if (item && (item.room || 1) !== room.id) return; // stored; shown in its room
    let li = pendingEl(d.cid);
    if (li && li.dataset.id) {
      // Adopted by its broadcast, which came first: it is already the real
      // message. (If the adoption guessed wrong, that line is still a real
      // message, and this ack's own message is handled below.)
      delete li.dataset.cid;
      if (msgIdOf(li) === id) { retint(); return; }
      li = null;
    }
    if (!Number.isSafeInteger(id) || id <= 0) { li?.remove(); regroup(); return; }
    ownIds.add(id);
    if ($('m-' + id) || deletedIds.has(id)) {
      // The broadcast came first and is on the page: show it once.
      li?.remove();
      retint();
      return;
    }
    if (!item) { li?.remove(); regroup(); return; }
    // The ack came first: the pending line becomes the real message now; the
    // broadcast, when it comes, fills in the server's name and time.
    const real = li || document.createElement('li');
    real.className = 'msg';
    delete real.dataset.cid;
    fillMessage(real, { id, user: helloUserId !== null ? helloUser : item.user || helloUser, user_id: helloUserId, message: item.message, timestamp: Date.now() });
    real.dataset.provisional = '1';
    placeReal(real, id);
    retint();
  }

  function onError(d) {
    d = d || {};
    if (d.code === 'resync') { resync(); return; }
    const reason = errorText(d.code, d.message);
    if (typeof d.cid === 'string' && d.cid) {
      const item = queue.find((it) => it.cid === d.cid);
      if (item && d.code === 'unavailable' && retryLater(item)) return;
      if (d.code === 'bad_name' && !nameInput.readOnly) {
        // A member has taken the name since it was chosen.
        nameInput.setAttribute('aria-invalid', 'true');
        nickSent = '';
      }
      clearTimeout(retryTimers.get(d.cid));
      retryTimers.delete(d.cid);
      queue = queue.filter((it) => it.cid !== d.cid);
      saveQueue();
      if (!item) return;
      if ((item.room || 1) !== room.id) {
        notice(`A message for another room was not sent: ${reason}`);
        return;
      }
      const stick = nearBottom();
      let li = pendingEl(d.cid);
      if (!li || li.dataset.id) { // adopted by a look-alike: show a fresh copy
        if (li) delete li.dataset.cid;
        li = buildPending(item);
        list.append(li);
      }
      markFailed(li, item, reason);
      regroup();
      if (stick) scrollToBottom();
      return;
    }
    if (d.code === 'bad_name') {
      nameInput.setAttribute('aria-invalid', 'true');
      nickSent = '';
    }
    notice(reason);
  }

  let onlineIds = new Set(); // the accounts online, from the last presence frame

  // onPresence lists who is here: one line per person (an account's tabs
  // and devices counted on it), guests marked. A server from before
  // people sent names only: each is a line.
  function onPresence(d) {
    if (!d) return;
    const users = Array.isArray(d.users) ? d.users.filter((u) => typeof u === 'string') : [];
    const people = Array.isArray(d.people)
      ? d.people.filter((p) => p && typeof p.user === 'string')
      : users.map((u) => ({ user: u, user_id: null, guest: false, devices: 1 }));
    // A person counts once however many devices; each guest connection
    // may be someone, so counts.
    const online = Array.isArray(d.people)
      ? people.reduce((n, p) => n + (p.guest && Number.isSafeInteger(p.devices) ? p.devices : 1), 0)
      : Number.isFinite(d.online) ? d.online : users.length;
    onlineCount.textContent = String(online);
    onlineIds = new Set(people.filter((p) => !p.guest && Number.isSafeInteger(p.user_id)).map((p) => p.user_id));
    const items = people.map((p) => {
      const li = document.createElement('li');
      li.append(avatar(p.user, p.guest ? null : p.user_id));
      const name = document.createElement('span');
      name.className = 'who';
      name.textContent = p.user;
      li.append(name);
      const tag = p.guest ? 'guest' : p.role === 'bot' ? 'bot' : helloUserId !== null && p.user_id === helloUserId ? 'you' : '';
      if (tag) {
        const t = document.createElement('span');
        t.className = 'tag';
        t.textContent = tag;
        li.append(t);
      }
      const n = Number.isSafeInteger(p.devices) ? p.devices : 1;
      if (n > 1) {
        // A guest name is not a person: two guests may share it.
        const c = document.createElement('span');
        c.className = 'count';
        c.textContent = p.guest ? `×${n}` : `${n} devices`;
        c.title = p.guest ? `${n} connections as this guest name` : `${n} tabs or devices`;
        li.append(c);
      }
      li.title = li.textContent;
      return li;
    });
    if (items.length === 0) {
      const li = document.createElement('li');
      li.className = 'none';
      li.textContent = 'Nobody else here';
      items.push(li);
    }
    onlineUsers.replaceChildren(...items);
    const names = people.map((p) => p.user);
    presenceEl.querySelector('summary').title = names.length ? names.join(', ') : `${online} online`;
  }

  // typerKey is whom a typing indicator is for: an account by its id (it
  // keeps its line through a rename), a guest by name.
  function typerKey(user, userId) {
    return Number.isSafeInteger(userId) ? `id:${userId}` : `name:${user}`;
  }

  function onTyping(d) {
    const user = d && typeof d.user === 'string' ? d.user : '';
    const userId = d && Number.isSafeInteger(d.user_id) ? d.user_id : null;
    if ((Number(d && d.room) || 1) !== room.id) return;
    // The server sends no account its own typing; a guest's other tabs
    // are told apart by name only.
    if (!user || (userId !== null && userId === helloUserId)) return;
    if (userId === null && myName() !== '' && user === myName()) return;
    typers.set(typerKey(user, userId), { user, until: Date.now() + TYPING_SHOWN });
    renderTyping();
  }

  function renderTyping() {
    const now = Date.now();
    for (const [k, t] of typers) if (t.until <= now) typers.delete(k);
    const names = [...typers.values()].map((t) => t.user);
    let text = '';
    if (names.length === 1) text = `${names[0]} is typing…`;
    else if (names.length === 2) text = `${names[0]} and ${names[1]} are typing…`;
    else if (names.length > 2) text = `${names.length} people are typing…`;
    if (typingEl.textContent !== text) typingEl.textContent = text;
    clearTimeout(typingTimer);
    if (names.length) {
      const next = Math.min(...[...typers.values()].map((t) => t.until)) - now;
      typingTimer = setTimeout(renderTyping, Math.max(50, next));
    }
  }

  // onPerson shows an account's new name wherever it is on the page: on
  // each of its messages, in the header and the composer when it is ours.
  // Presence follows in its own frame; a typing line keeps its place.
  function onPerson(d) {
    if (!d || !Number.isSafeInteger(d.user_id) || typeof d.user !== 'string' || d.user === '') return;
    for (const li of list.querySelectorAll(`li.msg[data-user-id="${d.user_id}"]`)) {
      const user = li.querySelector('.user');
      if (user) user.textContent = d.user;
      const av = li.querySelector('.avatar');
      if (av) setAvatar(av, d.user, d.user_id, av.classList.contains('face') ? av.dataset.initials : '');
    }
    const typer = typers.get(typerKey(d.user, d.user_id));
    if (typer) { typer.user = d.user; renderTyping(); }
    if (d.user_id === helloUserId) {
      helloUser = d.user;
      nickSent = d.user;
      nameInput.value = d.user;
      const account = $('account');
      if (account) {
        account.title = `Signed in as ${d.user}: your name, sessions, password, sign out`;
        const name = account.querySelector('.account-name');
        if (name) name.textContent = d.user;
        const av = account.querySelector('.avatar');
        if (av) setAvatar(av, d.user, d.user_id);
      }
      for (const item of queue) item.user = d.user;
    }
    retint();
  }

  // A change in the log: its event id is where the socket resumes from.
  // Reports whether the change is for the room shown (and not held).
  function changeEvent(type, d) {
    if (!d || !Number.isSafeInteger(d.id)) return false;
    if (resyncing) { resyncing.push([type, d]); return false; }
    if (Number.isSafeInteger(d.event)) lastId = Math.max(lastId, d.event);
    return (Number.isSafeInteger(d.room) ? d.room : 1) === room.id;
  }

  function onEdited(d) {
    if (!changeEvent('edited', d) || typeof d.message !== 'string') return;
    const li = $('m-' + d.id);
    if (!li) return;
    li.dataset.source = d.message;
    setText(li.querySelector('.text'), d);
    nameActions(li); // their names say how it begins
    setEdited(li, d.edited_at);
    // The replies to it quote it as it is now.
    for (const q of list.querySelectorAll(`button.quote[data-id="${d.id}"]`)) q.replaceWith(quoteButton(quoteOf(li)));
  }

  function onReacted(d) {
    if (!changeEvent('reacted', d)) return;
    const li = $('m-' + d.id);
    if (li) setReactions(li, d.reactions);
  }

  // A batch deleted together (a ban's) comes as ids.
  function onDeleted(d) {
    if (!d) return;
    if (Number.isSafeInteger(d.event) && !changeEvent('deleted', d) && resyncing) return;
    const ids = (Array.isArray(d.ids) ? d.ids : [d.id]).filter(Number.isSafeInteger);
    for (const id of ids) {
      deletedIds.add(id);
      // The replies to it say so.
      for (const q of list.querySelectorAll(`button.quote[data-id="${id}"]`)) q.replaceWith(quoteButton({ id, deleted: true }));
    }
    removeKeepingFocus(ids.map((id) => $('m-' + id))); // a batch at once: the focus skips them all
    regroup();
  }

  // ---------- history over REST ----------

  async function fetchMessages(url) {
    const res = await fetch(url, { headers: { Accept: 'application/json' }, cache: 'no-store' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const data = await res.json();
    if (!Array.isArray(data)) throw new Error('unexpected reply');
    return data.filter(validMessage).map(normalize);
  }

  // historyPage fetches the page of the room's history before the message
  // before (0: the newest page). It asks for one message more than a page:
  // if that one comes, there are older ones, and it is dropped.
  async function historyPage(before) {
    const msgs = await fetchMessages(before
      ? `${historyURL()}?before=${before}&limit=${PAGE + 1}`
      : `${historyURL()}/latest/${PAGE + 1}`);
    const older = msgs.length > PAGE;
    if (older) msgs.shift(); // oldest first: the extra one is the oldest
    return { msgs, older };
  }

  // resync replaces the list with the newest page of history; frames that
  // arrive meanwhile are held and applied after it.
  async function resync() {
    if (resyncing) return;
    resyncing = [];
    newList();
    try {
      const { msgs, older } = await historyPage(0);
      for (const li of realItems()) li.remove();
      const frag = document.createDocumentFragment();
      for (const m of msgs) frag.append(buildMessage(m));
      list.prepend(frag);
      // Every room's messages up to hello are in the counts refreshRooms
      // reads; this room's are on the page.
      lastId = Math.max(serverLatest, msgs.reduce((max, m) => Math.max(max, m.id), 0));
      refreshRooms();
      olderBtn.hidden = !older;
      detached = false;
      newerBtn.hidden = true;
      settling = null; // the list is whole again, and shown at its bottom
      regroup();
      scrollToBottom();
    } catch (err) {
      notice('Could not reload the conversation: ' + err.message);
    } finally {
      const held = resyncing;
      resyncing = null;
      for (const [type, d] of held) onFrame(type, d);
    }
  }

  // listGen counts the lists shown: a new room's, a reload of the
  // history, a permalink opened. What was asked for one list (an older
  // page, the pages before the first unread) is dropped if another is
  // shown when it comes: put above the new one, it would leave a gap.
  let listGen = 0;
  function newList() {
    listGen++;
    olderIdle();
  }

  // olderIdle shows "Load older messages" ready, no page on its way.
  // loadingOlder: a page of older messages is on its way. The button says
  // so with aria-disabled, not disabled: a disabled button loses the
  // keyboard's focus, which went back to the top of the page.
  let loadingOlder = false;
  function olderIdle() {
    loadingOlder = false;
    olderBtn.removeAttribute('aria-disabled');
    olderBtn.textContent = 'Load older messages';
    list.removeAttribute('aria-busy');
  }

  // loadOlder puts the page before the oldest message shown above it, and
  // reports whether it added any.
  async function loadOlder() {
    const before = smallestId();
    if (!before) { olderBtn.hidden = true; return false; }
    if (loadingOlder) return false;
    const gen = listGen;
    loadingOlder = true;
    olderBtn.setAttribute('aria-disabled', 'true');
    olderBtn.textContent = 'Loading…';
    list.setAttribute('aria-busy', 'true');
    try {
      const { msgs, older } = await historyPage(before);
      if (gen !== listGen) return false; // another list is shown now
      const frag = document.createDocumentFragment();
      for (const m of msgs) {
        if (m.id < before && !$('m-' + m.id)) frag.append(buildMessage(m));
      }
      const added = frag.childNodes.length > 0;
      // Keep what the reader is looking at in place.
      const fromBottom = scroller.scrollHeight - scroller.scrollTop;
      list.prepend(frag);
      moveNewDivider();
      regroup();
      scroller.scrollTop = scroller.scrollHeight - fromBottom;
      // The last of them: the keyboard goes on from the oldest message,
      // the button it was on gone.
      const focused = document.activeElement === olderBtn;
      olderBtn.hidden = !older;
      if (focused && !older) {
        const oldest = list.querySelector('li.msg[data-id]');
        if (oldest) visit(oldest);
      }
      return added;
    } catch (err) {
      if (gen === listGen) notice('Could not load older messages: ' + err.message);
      return false;
    } finally {
      if (gen === listGen) olderIdle();
    }
  }

  // ---------- connection ----------

  // The countdown changes every second; screen readers hear only the state.
  const SPOKEN = {
    connecting: 'Connecting',
    connected: 'Connected',
    reconnecting: 'Connection lost, reconnecting',
    offline: 'Offline',
    ended: 'Disconnected',
  };

  // CLOSE_ACCOUNT_ENDED is the close code of a socket whose account an admin
  // deactivated or banned (chat.CloseAccountEnded): reconnecting would be
  // refused, so the page stops and says why.
  const CLOSE_ACCOUNT_ENDED = 4003;

  function setStatus(state, text) {
    // Lost: the connection dropped and is not back yet (a phone shows
    // the words then, not its dot alone; style.css).
    if (state === 'connected') delete statusEl.dataset.lost;
    else if (state !== 'connecting') statusEl.dataset.lost = '';
    if (statusEl.dataset.state !== state) {
      statusEl.dataset.state = state;
      statusLive.textContent = SPOKEN[state];
    }
    if (statusText.textContent !== text) statusText.textContent = text;
  }

  function send(type, data) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify({ type, data }));
    return true;
  }

  function connect() {
    clearTimeout(retryTimer);
    clearInterval(countdownTimer);
    retryTimer = 0;
    if (ws || ended) return;
    if (!navigator.onLine) { setStatus('offline', 'Offline'); return; }
    setStatus('connecting', 'Connecting…');
    // batch=1: messages that waited for us may come several to a frame.
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/?batch=1' +
      (lastId ? '&after=' + lastId : '');
    let sock;
    try {
      sock = new WebSocket(url, PROTOCOL);
    } catch {
      scheduleReconnect();
      return;
    }
    ws = sock;
    ready = false;
    const resumed = lastId > 0;
    sock.onmessage = (ev) => {
      if (typeof ev.data !== 'string') return;
      let frame;
      try { frame = JSON.parse(ev.data); } catch { return; }
      if (!frame || typeof frame.type !== 'string') return;
      if (frame.type === 'hello') onHello(frame.data, resumed); else onFrame(frame.type, frame.data);
    };
    sock.onclose = (ev) => {
      if (ws !== sock) return;
      ws = null;
      ready = false;
      if (ev.code === CLOSE_ACCOUNT_ENDED) {
        const why = ev.reason || 'your account was turned off by an admin';
        // A deactivated person may read on as a guest; a ban refuses the
        // address too, so a reload would only be refused.
        endPage(why, /banned/.test(why) ? '' : ' Reload the page to go on signed out.');
        return;
      }
      // The sign-in this page was opened with ended (signed out on
      // another device, a password changed, a reset): it stops, and does
      // not come back as a guest under the person's name.
      if (ev.code === 1008 && ev.reason.startsWith('signed out')) {
        endPage(SIGNED_OUT, ' Sign in again, or reload the page to go on as a guest.');
        return;
      }
      // An admin's Disconnect is said; the page connects again.
      if (ev.code === 1008 && ev.reason === 'disconnected by an admin') notice('Disconnected by an admin: connecting again.');
      if (connectedAt && Date.now() - connectedAt > 10000) attempt = 0;
      connectedAt = 0;
      onlineCount.textContent = '–'; // unknown until the next presence frame
      markQueueWaiting();
      scheduleReconnect();
    };
    sock.onerror = () => { /* onclose follows and handles it */ };
  }

  // endPage stops the page for good: why (what the server said) is the
  // notice, with then after it, and the message box says why nothing can
  // be sent; what is queued stays queued, unsent.
  const SIGNED_OUT = 'you were signed out: on another device, or your password was changed';
  function endPage(why, then) {
    ended = why.charAt(0).toUpperCase() + why.slice(1);
    clearTimeout(retryTimer);
    clearInterval(countdownTimer);
    setStatus('ended', 'Disconnected');
    notice(`${ended}.${then}`, true);
    // Nothing typed now could be sent: say so where one types.
    document.body.removeAttribute('data-may-post');
    msgInput.disabled = true;
    sendBtn.disabled = true;
    if (fileInput) attachBtn.disabled = true;
    msgInput.placeholder = ended;
    onlineCount.textContent = '–';
    markQueueWaiting();
  }

  function onFrame(type, d) {
    switch (type) {
      case 'message': onMessage(d); break;
      case 'messages': if (Array.isArray(d)) d.forEach(onMessage); break;
      case 'ack': onAck(d); break;
      case 'error': onError(d); break;
      case 'presence': onPresence(d); break;
      case 'typing': onTyping(d); break;
      case 'edited': onEdited(d); break;
      case 'reacted': onReacted(d); break;
      case 'deleted': onDeleted(d); break;
      case 'person': onPerson(d); break;
      case 'membership': onMembership(d); break;
      case 'room': onRoom(d); break;
      case 'read': refreshRooms(); break;
      case 'notify': onNotify(d); break;
      case 'role': onRole(d); break;
      default: break; // newer server, older page: ignore what we do not know
    }
  }

  function onHello(d, resumed) {
    d = d || {};
    // A page opened signed in, greeted as a guest: its sign-in ended while
    // it was away (the close that says so never came). Nothing goes out
    // as a guest under the person's name, the queue least of all.
    if (signedIn && !Number.isSafeInteger(d.user_id)) {
      const sock = ws;
      ws = null;
      sock?.close(1000, 'signed out');
      endPage(SIGNED_OUT, ' Sign in again, or reload the page to go on as a guest.');
      return;
    }
    ready = true;
    connectedAt = Date.now();
    helloUser = typeof d.user === 'string' ? d.user : '';
    helloUserId = Number.isSafeInteger(d.user_id) ? d.user_id : null;
    nickSent = helloUser;
    setStatus('connected', 'Connected');
    forgetOthersPages();
    // Now we know who we are: our reactions, and what we may change.
    markMyReactions(list);
    markMyMentions(list);
    for (const li of realItems()) addActions(li);
    const latest = Number(d.latest_id) || 0;
    serverLatest = latest;
    // Counts may have moved while away; and the first time, the rooms'
    // notification settings are not on the page yet.
    if (resumed || (signedIn && !knownRooms.size)) refreshRooms();
    if (hellos++ > 0) checkForUpdate(); // back after the server was away
    // Without ?after= the server replays nothing, and a server whose latest
    // id is below ours has a different database: reload history either way.
    if ((!resumed && latest > lastId) || latest < lastId) resync();
    // A room that fits on the screen never scrolls, and a page opened at
    // its bottom scrolled before the socket could carry the read: now it
    // can.
    markRead();
    sendNick();
    // The queue goes again now: a retry still waiting would send twice.
    for (const t of retryTimers.values()) clearTimeout(t);
    retryTimers.clear();
    resend(queue);
    for (const item of queue) showState(item, 'sending');
  }

  // resend sends queued items again. A member's sends are theirs by
  // account, whatever their name is now: the server finds a re-sent cid by
  // the account, so each item simply goes again (and a nick would be
  // refused). A guest's item goes again under the name it first went
  // under: a cid names a guest's send per name, so one stored before a
  // rename (its ack lost, or refused as unavailable after it reached the
  // log) would be stored a second time under the new name. The server
  // reads a connection's frames in order, so a nick before a send names
  // that send.
  function resend(items) {
    if (helloUserId !== null) {
      for (const item of items) sendItem(item);
      return;
    }
    const current = nickSent;
    let as = current;
    for (const item of items) {
      const name = item.sentAs || item.user || current;
      if (name !== as && send('nick', { user: name })) as = name;
      item.sentAs = as;
      sendItem(item);
    }
    if (as !== current) send('nick', { user: current });
    if (items.length) saveQueue();
  }

  // stateLabel is where a pending line says how its send is going.
  function stateLabel(li) { return li?.querySelector('.state span:last-child'); }

  // showState puts text on item's pending line, if it is on the page.
  function showState(item, text) {
    const label = stateLabel(pendingEl(item.cid));
    if (label) label.textContent = text;
  }

  function markQueueWaiting() {
    for (const item of queue) showState(item, 'waiting');
  }

  // Exponential backoff with full jitter, capped at 30 s.
  function scheduleReconnect() {
    clearTimeout(retryTimer);
    clearInterval(countdownTimer);
    if (!navigator.onLine) { setStatus('offline', 'Offline'); return; }
    const cap = Math.min(MAX_BACKOFF, 1000 * 2 ** attempt);
    attempt = Math.min(attempt + 1, 16);
    const delay = Math.max(500, Math.random() * cap);
    retryAt = Date.now() + delay;
    const tick = () => {
      const s = Math.max(1, Math.ceil((retryAt - Date.now()) / 1000));
      setStatus('reconnecting', `Reconnecting in ${s}s`);
    };
    tick();
    countdownTimer = setInterval(tick, 250);
    retryTimer = setTimeout(connect, delay);
  }

  window.addEventListener('online', () => {
    if (ended) return;
    if (!ws) connect();
    else if (ready) setStatus('connected', 'Connected');
  });
  window.addEventListener('offline', () => {
    if (ended) return;
    if (!ws) { clearTimeout(retryTimer); clearInterval(countdownTimer); }
    setStatus('offline', 'Offline');
  });

  // ---------- sending ----------

  function sendNick() {
    const n = myName();
    // The server wants 1–32 characters; an empty field means "guest", which
    // the server gives every new connection by default.
    if (!ready || nameInput.readOnly || n === '' || n === nickSent) return;
    if (send('nick', { user: n })) nickSent = n;
  }

  function submit() {
    const text = msgInput.value.trim();
    if (!text || !updateCounter()) return;
    // The server refused the name in the field (a member's): a message
    // would go out under the name before it, not the one shown. The text
    // stays in the box until the name is one the server takes.
    if (!nameInput.readOnly && nameInput.getAttribute('aria-invalid') === 'true') {
      notice(`Choose another name first: “${myName()}” is not one you can use here.`);
      nameInput.focus();
      return;
    }
    msgInput.value = '';
    autosize();
    updateCounter();
    // Sent from a permalink's past: back to the newest, where it shows.
    if (detached) switchRoom(room.slug, true);
    enqueue(text);
  }

  // enqueue queues a new send (a message just written, or a failed one
  // retried), shows it at the bottom as pending and, when connected, sends it.
  function enqueue(message) {
    const item = { cid: uuid4(), message, user: myName(), ts: Date.now(), room: room.id };
    if (replyingTo) {
      item.reply_to = replyingTo.id;
      item.quote = replyingTo;
      setReplying(null);
    }
    knownCids.add(item.cid);
    queue.push(item);
    saveQueue();
    const li = buildPending(item);
    if (!ready) stateLabel(li).textContent = 'waiting';
    list.append(li);
    regroup();
    scrollToBottom();
    if (!ready) return;
    // A rename still waiting for its timer goes first, so that the item is
    // sent under the name it shows; sentAs keeps that name for re-sends.
    sendNick();
    item.sentAs = nickSent;
    saveQueue();
    sendItem(item);
  }

  // A node of a cluster that cannot reach the others refuses a send as
  // unavailable: for the seconds the others take to choose a new leader
  // when one dies, or while the node is cut off. The page sends it again
  // by itself, under the same cid (so it is stored once however many
  // tries reach the log), for about a minute, before it says Not sent.
  const RETRY_UNAVAILABLE = [1, 2, 4, 8, 15, 15, 15]; // seconds

  // retryLater sends item again after its next wait, and reports false
  // once it has waited them all.
  const retryTimers = new Map(); // cid → the timer of its next try
  function retryLater(item) {
    const n = item.retries || 0;
    if (n >= RETRY_UNAVAILABLE.length) return false;
    item.retries = n + 1;
    saveQueue();
    showState(item, 'waiting for the server');
    clearTimeout(retryTimers.get(item.cid));
    retryTimers.set(item.cid, setTimeout(() => {
      retryTimers.delete(item.cid);
      // Stored (acked) or given up meanwhile: nothing to send. Not
      // connected: the reconnect sends the queue.
      if (queue.includes(item) && ready) resend([item]);
    }, RETRY_UNAVAILABLE[n] * 1000));
    return true;
  }

  // sendItem sends a queued message (again): the same cid names it.
  function sendItem(item) {
    const data = { room: item.room || 1, message: item.message, cid: item.cid };
    if (item.reply_to) data.reply_to = item.reply_to;
    return send('send', data);
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submit();
    msgInput.focus();
  });

  msgInput.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
      ev.preventDefault();
      submit();
    }
  });

  msgInput.addEventListener('input', () => {
    autosize();
    updateCounter();
    const now = Date.now();
    if (ready && msgInput.value.trim() !== '' && now - lastTypingSent >= TYPING_EVERY) {
      if (send('typing', { room: room.id })) lastTypingSent = now;
    }
  });

  // Grow the box with its text where CSS field-sizing is missing.
  const needsAutosize = !(window.CSS && CSS.supports && CSS.supports('field-sizing', 'content'));
  function autosize() {
    if (!needsAutosize) return;
    msgInput.style.height = 'auto';
    msgInput.style.height = Math.min(msgInput.scrollHeight + 2, 152) + 'px';
  }

  let nickTimer = 0;
  function nameChanged() {
    const n = myName();
    setItem(NAME_KEY, n);
    nameInput.removeAttribute('aria-invalid');
    clearTimeout(nickTimer);
    nickTimer = setTimeout(sendNick, 600);
    retint();
  }
  nameInput.addEventListener('input', nameChanged);
  nameInput.addEventListener('change', () => { clearTimeout(nickTimer); sendNick(); });
  nameInput.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') { ev.preventDefault(); msgInput.focus(); }
  });

  list.addEventListener('click', (ev) => {
    const btn = ev.target.closest('button');
    const li = btn?.closest('li.msg.failed');
    if (!li) return;
    if (btn.classList.contains('dismiss')) {
      li.remove();
      regroup();
    } else if (btn.classList.contains('retry')) {
      const message = li.dataset.message || '';
      li.remove();
      if (message) enqueue(message);
    }
  });

  // ---------- pictures and files ----------

  // Signed-in people attach files: with the paperclip, by pasting a
  // picture, or by dropping files on the room. Each upload shows above the
  // composer with its progress; a failed one says why and offers Retry,
  // which sends it again under the same Idempotency-Key (so a retry of an
  // upload that did arrive is not stored twice). The message itself comes
  // over the socket, as every message does.
  const attachBtn = $('attach');
  const fileInput = $('file-input');
  const uploadsEl = $('uploads');
  const MAX_UPLOAD = fileInput ? Number(fileInput.dataset.maxUpload) || 0 : 0;
  const SHOWN_BOX = 320; // views.ShownBox

  function validFile(f) {
    return !!f && typeof f.url === 'string' && f.url.startsWith('/files/') &&
      typeof f.name === 'string' && Number.isSafeInteger(f.size);
  }

  // humanSize is views.HumanSize: 812 B, 2.4 kB, 340 kB, cut to a tenth.
  function humanSize(n) {
    if (n < 1000) return n + ' B';
    let unit = 1000, name = 'kB';
    if (n >= 1e9) { unit = 1e9; name = 'GB'; } else if (n >= 1e6) { unit = 1e6; name = 'MB'; }
    const tenths = Math.floor(n * 10 / unit);
    if (tenths < 100) return Math.floor(tenths / 10) + '.' + (tenths % 10) + ' ' + name;
    return Math.floor(n / unit) + ' ' + name;
  }

  // shownSize is views.ShownSize: fitted in SHOWN_BOX, never enlarged.
  function shownSize(w, h) {
    if (w <= SHOWN_BOX && h <= SHOWN_BOX) return [Math.max(1, w), Math.max(1, h)];
    if (w >= h) return [SHOWN_BOX, Math.max(1, Math.floor(h * SHOWN_BOX / w))];
    return [Math.max(1, Math.floor(w * SHOWN_BOX / h)), SHOWN_BOX];
  }

  // fileBlock is views.FileBlock: a picture's thumbnail, sized before it
  // loads, opening the full size; or a download with name and size.
  function fileBlock(f) {
    const a = document.createElement('a');
    a.href = f.url;
    if (typeof f.thumbnail === 'string' && f.thumbnail.startsWith('/files/') && Number.isSafeInteger(f.width) && Number.isSafeInteger(f.height)) {
      a.className = 'file picture';
      a.target = '_blank';
      a.rel = 'noopener';
      a.title = f.name + ' (open full size)';
      const img = document.createElement('img');
      img.src = f.thumbnail;
      const [w, h] = shownSize(f.width, f.height);
      img.width = w;
      img.height = h;
      img.alt = f.name;
      img.loading = 'lazy';
      img.decoding = 'async';
      a.append(img);
      return a;
    }
    a.className = 'file download';
    a.download = f.name;
    const icon = document.createElement('span');
    icon.className = 'file-icon';
    icon.setAttribute('aria-hidden', 'true');
    const name = document.createElement('span');
    name.className = 'file-name';
    name.textContent = f.name;
    const size = document.createElement('span');
    size.className = 'file-size';
    size.textContent = humanSize(f.size);
    a.append(icon, name, size);
    return a;
  }

  // startUploads sends files to the shown room. The first carries what the
  // composer holds, as one would expect of a picture picked after typing:
  // its text as the caption (one too long to send stays in the box), and
  // the message being answered.
  function startUploads(files) {
    files = [...files];
    if (!fileInput || files.length === 0) return;
    let text = msgInput.value.trim();
    if (text && updateCounter()) {
      msgInput.value = '';
      autosize();
      updateCounter();
    } else {
      text = '';
    }
    const quote = replyingTo;
    if (replyingTo) setReplying(null);
    files.forEach((f, i) => startUpload(f, i === 0 ? text : '', i === 0 ? quote : null));
  }

  // startUpload sends one file, with its caption and the quote of what it
  // answers (null: nothing).
  function startUpload(file, text, quote) {
    const up = { file, text, quote, replyTo: quote ? quote.id : 0, key: uuid4(), slug: room.slug, li: document.createElement('li') };
    up.li.className = 'upload';
    up.li.dataset.slug = up.slug;
    uploadsEl.append(up.li);
    showUploads();
    if (MAX_UPLOAD && file.size > MAX_UPLOAD) {
      uploadFailed(up, `it is ${humanSize(file.size)}; the most is ${humanSize(MAX_UPLOAD)}.`);
      return;
    }
    sendUpload(up);
  }

  // showUploads shows the uploads of the room shown: one under way or
  // failed elsewhere waits for its own room.
  function showUploads() {
    let shown = 0;
    for (const li of uploadsEl.children) {
      li.hidden = li.dataset.slug !== room.slug;
      if (!li.hidden) shown++;
    }
    uploadsEl.hidden = shown === 0;
  }

  function uploadRow(up, stateText) {
    const name = document.createElement('span');
    name.className = 'up-name';
    name.textContent = up.file.name || 'file';
    const state = document.createElement('span');
    state.className = 'up-state';
    state.textContent = stateText;
    up.li.replaceChildren(name, state);
    return state;
  }

  // The server takes two uploads of one person at once (429 beyond): a
  // paste or a drop of more waits its turn here.
  const UPLOADS_AT_ONCE = 2;
  let uploading = 0;
  const waitingUploads = [];
  function uploadDone() {
    uploading--;
    if (waitingUploads.length) sendUpload(waitingUploads.shift());
  }

  function sendUpload(up) {
    up.li.classList.remove('failed');
    if (uploading >= UPLOADS_AT_ONCE) {
      uploadRow(up, 'waiting');
      waitingUploads.push(up);
      return;
    }
    uploading++;
    const state = uploadRow(up, '0%');
    const bar = document.createElement('progress');
    bar.max = 1;
    bar.value = 0;
    bar.setAttribute('aria-label', 'Uploading ' + (up.file.name || 'file'));
    up.li.append(bar);
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/rooms/' + encodeURIComponent(up.slug) + '/files');
    xhr.setRequestHeader('Idempotency-Key', up.key);
    xhr.upload.onprogress = (e) => {
      if (!e.lengthComputable || e.total <= 0) return;
      bar.value = e.loaded / e.total;
      state.textContent = Math.floor(100 * e.loaded / e.total) + '%';
    };
    xhr.onloadend = uploadDone;
    xhr.onload = () => {
      if (xhr.status === 201) {
        up.li.remove();
        showUploads();
        return;
      }
      let why = '';
      try { why = JSON.parse(xhr.responseText).error; } catch { /* not JSON */ }
      // Too large, not allowed, not a picture it claims to be: trying the
      // same file again gets the same answer. Busy or failing may pass.
      const retryable = xhr.status >= 500 || xhr.status === 429 || xhr.status === 408;
      uploadFailed(up, typeof why === 'string' && why ? why : `The server answered ${xhr.status}.`, retryable);
    };
    xhr.onerror = () => uploadFailed(up, 'It did not get through: check the connection.', true);
    const body = new FormData();
    if (up.text) body.append('message', up.text);
    if (up.replyTo) body.append('reply_to', String(up.replyTo));
    body.append('file', up.file, up.file.name || 'file');
    xhr.send(body);
  }

  function uploadFailed(up, why, retryable) {
    up.li.classList.add('failed');
    uploadRow(up, 'Not sent: ' + why);
    const actions = document.createElement('div');
    actions.className = 'up-actions';
    if (retryable) {
      const retry = document.createElement('button');
      retry.type = 'button';
      retry.className = 'retry';
      retry.textContent = 'Retry';
      retry.addEventListener('click', () => sendUpload(up));
      actions.append(retry);
    }
    const dismiss = document.createElement('button');
    dismiss.type = 'button';
    dismiss.className = 'dismiss';
    dismiss.textContent = 'Dismiss';
    dismiss.addEventListener('click', () => {
      up.li.remove();
      showUploads();
      // The caption it took goes back to an empty box of its room, not
      // lost with it, and the reply it was.
      if (up.text && up.slug === room.slug && msgInput.value.trim() === '') {
        msgInput.value = up.text;
        autosize();
        updateCounter();
        if (up.quote && !replyingTo) setReplying(up.quote);
      }
      msgInput.focus();
    });
    actions.append(dismiss);
    up.li.append(actions);
  }

  if (fileInput) {
    attachBtn.addEventListener('click', () => fileInput.click());
    fileInput.addEventListener('change', () => {
      startUploads(fileInput.files);
      fileInput.value = ''; // the same file may be picked again
    });
    msgInput.addEventListener('paste', (ev) => {
      const files = ev.clipboardData ? [...ev.clipboardData.files] : [];
      if (files.length === 0) return; // text: pasted as usual
      ev.preventDefault();
      startUploads(files);
    });
    const carriesFiles = (ev) => !!ev.dataTransfer && [...ev.dataTransfer.types].includes('Files');
    document.addEventListener('dragover', (ev) => {
      if (!carriesFiles(ev) || form.hidden || attachBtn.disabled) return;
      ev.preventDefault();
      ev.dataTransfer.dropEffect = 'copy';
      document.body.classList.add('dropping');
    });
    document.addEventListener('dragleave', (ev) => {
      if (!ev.relatedTarget) document.body.classList.remove('dropping'); // left the window
    });
    document.addEventListener('drop', (ev) => {
      document.body.classList.remove('dropping');
      if (!carriesFiles(ev) || form.hidden || attachBtn.disabled) return;
      ev.preventDefault();
      startUploads(ev.dataTransfer.files);
    });
  }

  // ---------- changing a message: react, edit, delete ----------

  // Each message has its actions on hover or keyboard focus (a tap on a
  // touch screen): react for every signed-in person; edit for its author
  // within the edit window; delete for its author, the room's creator and
  // admins. The server checks each again; its change reaches every page,
  // this one too, as an edited, reacted or deleted frame.
  const deleteDialog = $('delete-dialog');
  const picker = $('picker');

  function mayEdit(li) {
    const t = Date.parse(li.querySelector('time')?.dateTime || '');
    return li.classList.contains('mine') && userIdOf(li) !== null && userIdOf(li) === helloUserId &&
      Date.now() - t < EDIT_WINDOW && !room.archived;
  }

  function mayDelete(li) {
    const own = signedIn && userIdOf(li) !== null && userIdOf(li) === helloUserId;
    return !room.archived && (own || isAdmin || room.manage);
  }

  const trashIcon = (() => {
    const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('width', '14');
    svg.setAttribute('height', '14');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    const path = document.createElementNS('http://www.w3.org/2000/svg', 'path');
    path.setAttribute('d', 'M9 3h6l1 2h4v2H4V5h4zM6 9h12l-1 12H7zm4 2v8h1.5v-8zm2.5 0v8H14v-8z');
    path.setAttribute('fill', 'currentColor');
    svg.append(path);
    return svg;
  })();

  function actionButton(cls, label, text) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = cls;
    b.setAttribute('aria-label', label);
    b.title = label;
    b.textContent = text;
    return b;
  }

  // aboutMessage names a message for those who hear its actions: whose,
  // and how it begins ("Bob's message “see you at…”").
  function aboutMessage(li) {
    const whose = li.classList.contains('mine') ? 'your' : `${li.querySelector('.by .user')?.textContent || 'a'}’s`;
    let text = (li.querySelector('.text')?.textContent || li.querySelector('.file-name')?.textContent || '').trim().replace(/\s+/g, ' ');
    if (text.length > 40) text = text.slice(0, 39) + '…';
    return text ? `${whose} message “${text}”` : `${whose} message`;
  }

  function addActions(li) {
    li.querySelector('.actions')?.remove();
    // A guest may reply; an admin signed in with the admin password alone
    // (no account) may delete too.
    if (!li.dataset.id || li.classList.contains('editing') || room.archived) return;
    const bar = document.createElement('div');
    bar.className = 'actions';
    if (document.body.hasAttribute('data-may-post')) bar.append(actionButton('act-reply', '', '↩'));
    if (signedIn) bar.append(actionButton('act-react', '', '☺+'));
    if (signedIn && mayEdit(li)) bar.append(actionButton('act-edit', '', '✎'));
    if (mayDelete(li)) {
      // A drawn bin: the emoji one is a blank box where no emoji font is.
      const del = actionButton('act-delete delete', '', '');
      del.append(trashIcon.cloneNode(true));
      bar.append(del);
    }
    li.append(bar);
    nameActions(li);
  }

  // nameLink names a message's time, its link, as heard: the time as
  // shown, then the message ("12:04, Bob’s message “see you…”"). A label,
  // not hidden text, which a copy of the chat would carry along.
  function nameLink(link) {
    if (link?.dataset.about) link.setAttribute('aria-label', `${link.textContent}, ${link.dataset.about}`);
  }

  // nameActions gives a message's actions their names, as the message
  // reads now.
  function nameActions(li) {
    const about = aboutMessage(li);
    const link = li.querySelector('a.permalink');
    if (link) {
      link.dataset.about = about;
      nameLink(link);
    }
    for (const [cls, verb] of [['act-reply', 'Reply to'], ['act-react', 'React to'], ['act-edit', 'Edit'], ['act-delete', 'Delete']]) {
      const b = li.querySelector(`.actions .${cls}`);
      if (b) {
        b.setAttribute('aria-label', `${verb} ${about}`);
        b.title = verb.replace(' to', ''); // seen on hover: the message is beside it
      }
    }
  }

  function messageURL(id) {
    return `/rooms/${encodeURIComponent(room.slug)}/messages/${id}`;
  }

  async function react(li, emoji) {
    const pressed = [...li.querySelectorAll('button.reaction')].find((b) => b.dataset.emoji === emoji)?.getAttribute('aria-pressed') === 'true';
    try {
      const m = await api('POST', messageURL(msgIdOf(li)) + '/reactions', { emoji, on: !pressed });
      if (m && $('m-' + m.id)) setReactions(li, m.reactions);
    } catch (err) {
      notice('Could not react: ' + err.message);
    }
  }

  // The picker: quick reactions and a field for any emoji, beside the
  // message it is for.
  let pickerFor = null;
  function openPicker(li, from) {
    if (!picker) return;
    pickerFor = li;
    picker.hidden = false;
    const r = from.getBoundingClientRect();
    const w = picker.offsetWidth;
    picker.style.left = Math.max(8, Math.min(window.innerWidth - w - 8, r.right - w)) + 'px';
    // Below the button if it fits above the composer, else above it: not
    // over the message box, nor the message it is for.
    const below = r.bottom + 6;
    const floor = Math.min(window.innerHeight, scroller.getBoundingClientRect().bottom);
    picker.style.top = (below + picker.offsetHeight <= floor ? below : Math.max(8, r.top - picker.offsetHeight - 6)) + 'px';
    picker.querySelector('button')?.focus();
  }
  function closePicker(refocus) {
    if (!picker || picker.hidden) return;
    picker.hidden = true;
    if (refocus) pickerFor?.querySelector('.act-react')?.focus();
    pickerFor = null;
  }
  if (picker) {
    picker.addEventListener('click', (ev) => {
      const b = ev.target.closest('.quick button[data-emoji]');
      if (!b || !pickerFor) return;
      const li = pickerFor;
      // A tap or a click is done with the message: its actions go (focus
      // left on them would keep them shown). A key's press gives the
      // focus back to the button that opened the picker.
      closePicker(ev.detail === 0);
      if (ev.detail !== 0) li.classList.remove('show-actions');
      react(li, b.dataset.emoji);
    });
    $('picker-any').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const input = $('picker-emoji');
      const emoji = input.value.trim();
      if (!emoji || !pickerFor) return;
      const li = pickerFor;
      input.value = '';
      closePicker(true);
      react(li, emoji);
    });
    picker.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') { ev.stopPropagation(); closePicker(true); } });
    // Tab past its first or last control leaves it: closed, back at its
    // button (it sits at the end of the page, away from the message).
    picker.addEventListener('keydown', (ev) => {
      if (ev.key !== 'Tab') return;
      const stops = stopsIn(picker);
      if (document.activeElement === (ev.shiftKey ? stops[0] : stops[stops.length - 1])) {
        ev.preventDefault();
        closePicker(true);
      }
    });
    picker.addEventListener('focusout', (ev) => {
      // Its own ☺+, pressed again, closes it by its click.
      if (ev.relatedTarget && !picker.contains(ev.relatedTarget) && ev.relatedTarget !== pickerFor?.querySelector('.act-react')) closePicker(false);
    });
    document.addEventListener('pointerdown', (ev) => {
      if (!picker.hidden && !picker.contains(ev.target) && !ev.target.closest('.act-react')) closePicker(false);
    });
    scroller.addEventListener('scroll', () => closePicker(false), { passive: true });
    window.addEventListener('resize', () => closePicker(false)); // placed for the old size
  }

  // Editing happens in place: the text becomes a box; Enter saves, Shift+
  // Enter is a new line, Escape leaves it as it was. Begun with the keys
  // on its ✎ (fromKey), the focus goes back there; else to the message box.
  async function startEdit(li, fromKey) {
    if (!mayEdit(li) || li.classList.contains('editing')) return;
    closePicker(false);
    const text = li.querySelector('.text');
    li.classList.add('editing');
    if (li.dataset.source === undefined) {
      // Rendered by the server: the text as written (its markup) is the
      // message's, not the page's.
      try {
        const m = await api('GET', messageURL(msgIdOf(li)));
        li.dataset.source = m.message;
      } catch (err) {
        li.classList.remove('editing');
        notice('Could not edit: ' + err.message);
        return;
      }
    }
    const before = li.dataset.source;
    li.querySelector('.actions')?.remove();
    const box = document.createElement('form');
    box.className = 'edit-box';
    const area = document.createElement('textarea');
    area.rows = Math.min(8, before.split('\n').length);
    area.value = before;
    area.setAttribute('aria-label', 'Edit message');
    const save = document.createElement('button');
    save.type = 'submit';
    save.className = 'primary';
    save.textContent = 'Save';
    const cancel = document.createElement('button');
    cancel.type = 'button';
    cancel.textContent = 'Cancel';
    const hint = document.createElement('span');
    hint.className = 'hint';
    hint.textContent = 'Enter saves · Esc cancels';
    box.append(area, save, cancel, hint);
    text.hidden = true;
    text.after(box);
    area.focus();
    area.setSelectionRange(area.value.length, area.value.length);
    const done = () => {
      box.remove();
      text.hidden = false;
      li.classList.remove('editing');
      addActions(li);
    };
    const back = () => ((fromKey && li.isConnected && li.querySelector('.act-edit')) || msgInput).focus();
    cancel.addEventListener('click', () => { done(); back(); });
    area.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape') { ev.preventDefault(); ev.stopPropagation(); done(); back(); }
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); box.requestSubmit(); }
    });
    box.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const message = area.value;
      if (message.trim() === '') { notice('An edit cannot be empty: delete the message instead.'); return; }
      save.disabled = true;
      try {
        const m = await api('PATCH', messageURL(msgIdOf(li)), { message });
        done();
        if (m) onEdited({ id: m.id, room: room.id, message: m.message, html: m.html, edited_at: m.edited_at });
        li.dataset.source = message;
        back();
      } catch (err) {
        save.disabled = false;
        notice('Could not save the edit: ' + err.message);
      }
    });
  }

  async function deleteMessage(id) {
    try {
      if (signedIn) {
        await api('DELETE', messageURL(id));
      } else {
        // The admin password's session: the dashboard's route.
        const res = await fetch(`/admin/messages/${id}/delete`, { method: 'POST', headers: { Accept: 'application/json' } });
        if (!res.ok && res.status !== 404) {
          let why = '';
          try { why = (await res.json()).error; } catch { /* not JSON */ }
          throw new Error(why || `HTTP ${res.status}`);
        }
      }
      onDeleted({ id });
    } catch (err) {
      if (/no such message/.test(err.message)) { onDeleted({ id }); return; } // someone deleted it already
      notice('Could not delete the message: ' + err.message);
    }
  }

  async function confirmDelete(li) {
    if (!deleteDialog) return;
    const id = msgIdOf(li);
    $('delete-text').textContent = li.querySelector('.text')?.textContent || '';
    // The line goes when the deletion comes back (onDeleted), with the
    // keyboard's focus on it moved to the next.
    if (await answered(deleteDialog)) deleteMessage(id);
  }

  // Who reacted: in the button's title on hover, and on a long press.
  let pressTimer = 0;
  let longPressed = false;
  list.addEventListener('pointerdown', (ev) => {
    const b = ev.target.closest('button.reaction');
    longPressed = false;
    clearTimeout(pressTimer);
    if (!b) return;
    pressTimer = setTimeout(() => {
      longPressed = true;
      notice(`${b.dataset.emoji} ${b.title || 'no one'}`);
    }, 500);
  });
  for (const t of ['pointerup', 'pointercancel', 'pointerleave']) list.addEventListener(t, () => clearTimeout(pressTimer));

  list.addEventListener('click', (ev) => {
    const li = ev.target.closest('li.msg[data-id]');
    if (!li) return;
    const reaction = ev.target.closest('button.reaction');
    if (reaction) {
      if (longPressed) { longPressed = false; return; }
      if (signedIn) react(li, reaction.dataset.emoji);
      else notice(`${reaction.dataset.emoji} ${reaction.title}`);
      return;
    }
    const quote = ev.target.closest('button.quote');
    if (quote) { showMessage(Number(quote.dataset.id)); return; }
    const action = ev.target.closest('.actions button');
    // On a touch screen the actions a tap showed go once one is used.
    if (action && !action.classList.contains('act-react')) li.classList.remove('show-actions');
    if (action?.classList.contains('act-reply')) {
      startReply(li);
    } else if (action?.classList.contains('act-react')) {
      if (pickerFor === li) closePicker(true); else openPicker(li, action);
    } else if (action?.classList.contains('act-edit')) {
      startEdit(li, ev.detail === 0);
    } else if (action?.classList.contains('act-delete')) {
      confirmDelete(li);
    } else if (!ev.target.closest('a, button, textarea, form, .mention') && window.matchMedia('(hover: none)').matches) {
      // On a touch screen a tap shows a message's actions (and hides the
      // others').
      for (const other of list.querySelectorAll('li.show-actions')) if (other !== li) other.classList.remove('show-actions');
      li.classList.toggle('show-actions');
    }
  });

  // ---------- replying ----------

  // The line above the message box says what the next message answers.
  let replyingTo = null; // the quote: {id, user, message}
  const replyBar = document.createElement('div');
  replyBar.id = 'replying';
  replyBar.className = 'replying';
  replyBar.hidden = true;
  const replyText = document.createElement('span');
  replyText.className = 'what';
  const replyCancel = document.createElement('button');
  replyCancel.type = 'button';
  replyCancel.className = 'cancel';
  replyCancel.textContent = '×';
  replyCancel.setAttribute('aria-label', 'Do not reply');
  replyBar.append(replyText, replyCancel);
  form.before(replyBar);
  replyCancel.addEventListener('click', () => { setReplying(null); msgInput.focus(); });

  function setReplying(q) {
    replyingTo = q;
    replyBar.hidden = !q;
    if (!q) return;
    replyText.replaceChildren('Replying to ', Object.assign(document.createElement('strong'), { textContent: q.user }), ': ' + q.message);
  }

  function startReply(li) {
    setReplying(quoteOf(li));
    msgInput.focus();
  }

  // quoteOf is the message li as a reply quotes it, as db.QuoteOf makes
  // it: its first line, cut to 140 characters, "…" when there is more.
  function quoteOf(li) {
    let text = li.dataset.source ?? li.querySelector('.text')?.textContent ?? '';
    // A file sent without text is quoted by its name (db.QuoteOf).
    if (text === '' && li.classList.contains('bare')) text = li.querySelector('.file-name')?.textContent || li.querySelector('.file img')?.alt || '';
    const lines = text.split('\n');
    const chars = [...lines[0]];
    const more = lines.length > 1 || chars.length > 140;
    return { id: msgIdOf(li), user: li.querySelector('.user')?.textContent || '', message: chars.slice(0, 140).join('') + (more ? '…' : '') };
  }

  // ---------- mentions: @ offers the room's people ----------

  const mentionBox = document.createElement('ul');
  mentionBox.id = 'mention-list';
  mentionBox.className = 'mention-list';
  mentionBox.setAttribute('role', 'listbox');
  mentionBox.setAttribute('aria-label', 'People to mention');
  mentionBox.hidden = true;
  form.before(mentionBox);
  // The message box says it offers names from that list, and a status
  // says when it opens, for those who do not see it.
  msgInput.setAttribute('aria-autocomplete', 'list');
  msgInput.setAttribute('aria-controls', mentionBox.id);
  const mentionSaid = document.createElement('span');
  mentionSaid.className = 'visually-hidden';
  mentionSaid.setAttribute('role', 'status');
  form.before(mentionSaid);
  let roomPeopleList = null; // the room's people, read once per room: [{user_id, user}]
  let peopleFor = 0;
  let mentionAt = -1; // where the "@" being completed is in the box
  let mentionPick = 0;

  async function roomPeople() {
    if (roomPeopleList && peopleFor === room.id) return roomPeopleList;
    peopleFor = room.id;
    try {
      const d = await roomDetail(room.slug);
      roomPeopleList = (Array.isArray(d.people) ? d.people : []).filter((p) => p && typeof p.user === 'string');
      if (d.manage || isAdmin) roomPeopleList.push({ user_id: 0, user: 'room', everyone: true });
    } catch {
      roomPeopleList = [];
    }
    return roomPeopleList;
  }

  function closeMentions() {
    offerSeq++; // and any offer still reading the people
    mentionBox.hidden = true;
    mentionAt = -1;
    msgInput.removeAttribute('aria-activedescendant');
    mentionSaid.textContent = '';
  }

  let offerSeq = 0; // the newest offer: an older one whose people come later is dropped
  async function offerMentions() {
    const seq = ++offerSeq;
    const upto = msgInput.value.slice(0, msgInput.selectionStart);
    const m = /(^|[\s([{<"'])@([^\s@]{0,32})$/.exec(upto);
    if (!m) { closeMentions(); return; }
    const at = upto.length - m[2].length - 1;
    const q = m[2].toLowerCase();
    const all = await roomPeople();
    if (seq !== offerSeq) return;
    const found = all.filter((p) => p.user.toLowerCase().startsWith(q) && p.user_id !== helloUserId).slice(0, 8);
    if (found.length === 0) { closeMentions(); return; }
    mentionAt = at;
    mentionPick = Math.min(mentionPick, found.length - 1);
    mentionBox.replaceChildren(...found.map((p, i) => {
      const li = document.createElement('li');
      li.id = 'mention-' + i;
      li.setAttribute('role', 'option');
      li.setAttribute('aria-selected', String(i === mentionPick));
      li.dataset.name = p.user;
      if (!p.everyone) li.append(avatar(p.user, p.user_id));
      li.append(Object.assign(document.createElement('span'), { textContent: p.everyone ? '@room — everyone here' : p.user }));
      return li;
    }));
    mentionBox.hidden = false;
    msgInput.setAttribute('aria-activedescendant', 'mention-' + mentionPick);
    const said = `${found.length} ${found.length === 1 ? 'name' : 'names'} to mention: arrows choose, Enter picks`;
    if (mentionSaid.textContent !== said) mentionSaid.textContent = said;
  }

  function pickMention(name) {
    const before = msgInput.value.slice(0, mentionAt);
    const after = msgInput.value.slice(msgInput.selectionStart);
    const insert = '@' + name + ' ';
    msgInput.value = before + insert + after.replace(/^\S*/, '');
    const caret = before.length + insert.length;
    msgInput.setSelectionRange(caret, caret);
    closeMentions();
    autosize();
    updateCounter();
  }

  msgInput.addEventListener('input', () => { mentionPick = 0; offerMentions(); });
  msgInput.addEventListener('blur', () => setTimeout(closeMentions, 150));
  // Captured, so that Enter picks a name rather than sends while the list
  // is open.
  msgInput.addEventListener('keydown', (ev) => {
    if (mentionBox.hidden) return;
    const n = mentionBox.children.length;
    switch (ev.key) {
      case 'ArrowDown': mentionPick = (mentionPick + 1) % n; break;
      case 'ArrowUp': mentionPick = (mentionPick + n - 1) % n; break;
      case 'Enter': case 'Tab': pickMention(mentionBox.children[mentionPick].dataset.name); break;
      case 'Escape': closeMentions(); break;
      default: return;
    }
    ev.preventDefault();
    ev.stopImmediatePropagation();
    if (!mentionBox.hidden) {
      for (const [i, li] of [...mentionBox.children].entries()) li.setAttribute('aria-selected', String(i === mentionPick));
      msgInput.setAttribute('aria-activedescendant', 'mention-' + mentionPick);
    }
  }, { capture: true });
  // A tap or click picks, keeping the keyboard where it is.
  mentionBox.addEventListener('pointerdown', (ev) => {
    const li = ev.target.closest('li[data-name]');
    if (!li) return;
    ev.preventDefault();
    pickMention(li.dataset.name);
  });

  // Up in the empty message box edits my newest message, as in most chats.
  msgInput.addEventListener('keydown', (ev) => {
    if (ev.key !== 'ArrowUp' || msgInput.value.trim() !== '' || ev.altKey || ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
    const mine = [...realItems()].reverse().find((li) => userIdOf(li) !== null && userIdOf(li) === helloUserId);
    if (mine && mayEdit(mine)) {
      ev.preventDefault();
      mine.scrollIntoView({ block: 'nearest' });
      startEdit(mine);
    }
  });

  // ---------- scrolling, title, visibility ----------

  olderBtn.addEventListener('click', loadOlder);
  jumpBtn.addEventListener('click', scrollToBottom);
  scroller.addEventListener('scroll', () => {
    if (nearBottom()) {
      jumpBtn.hidden = true;
      markRead();
    }
    updateJumpUnread();
  }, { passive: true });

  // The list scrolls with the keyboard from the message box too: Page Up
  // and Page Down always, Home and End when the box is empty.
  document.addEventListener('keydown', (ev) => {
    if (ev.altKey || ev.ctrlKey || ev.metaKey || document.querySelector('dialog[open]')) return;
    const inBox = ev.target === msgInput;
    if (!inBox && ev.target !== document.body && ev.target !== scroller) return;
    const page = scroller.clientHeight * 0.9;
    switch (ev.key) {
      case 'PageUp': scroller.scrollBy({ top: -page }); break;
      case 'PageDown': scroller.scrollBy({ top: page }); break;
      case 'Home': if (inBox && msgInput.value) return; scroller.scrollTop = 0; break;
      case 'End': if (inBox && msgInput.value) return; scrollToBottom(); break;
      default: return;
    }
    ev.preventDefault();
  });

  document.addEventListener('visibilitychange', () => {
    if (document.hidden) return;
    unread = 0;
    updateBadge();
    if (nearBottom()) markRead();
    // Back on the tab while waiting out a backoff: try now.
    if (!ws && retryTimer) connect();
  });

  // Close presence list when clicking elsewhere.
  document.addEventListener('click', (ev) => {
    if (presenceEl.open && !presenceEl.contains(ev.target)) presenceEl.open = false;
  });
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && presenceEl.open) presenceEl.open = false;
  });

  // ---------- notifications ----------
  //
  // Each person chooses per room what they hear of it (the server keeps it
  // with the membership): every message, mentions (and every message of a
  // direct conversation), or nothing. While no tab of theirs is in front,
  // what they chose reaches them as a browser notification (with their
  // permission), a sound (if they turned it on), and the count in the
  // title, on the favicon and on the installed app's icon. One tab
  // announces each message, however many tabs receive it. With every page
  // closed, Web Push takes over (the server's side, and sw.js).

  const SOUND_KEY = 'nochat:sound';
  const tabId = uuid4();
  const iconLink = document.querySelector('link[rel="icon"]');
  const iconHref = iconLink ? iconLink.href : '';
  const appIcon = document.querySelector('link[rel="apple-touch-icon"]')?.href || iconHref;
  // The browser's notifications and service workers exist only in a secure
  // context: HTTPS, or this machine.
  const canNotify = 'Notification' in window && window.isSecureContext;
  const canPush = canNotify && 'serviceWorker' in navigator && 'PushManager' in window;
  const notifyMenu = $('notify-menu');
  const notifyBtn = $('notify-browser');
  const soundBox = $('notify-sound');

  // levelOf is what we asked to hear of room id: from the rooms list, or
  // the sidebar as the server drew it.
  function levelOf(id) {
    const r = knownRooms.get(id);
    return (r && r.notify) || document.querySelector(`#sidebar a.room-link[data-room-id="${id}"]`)?.dataset.notify || 'mentions';
  }

  function mentionsMe(m) {
    return m.mentions.some((x) => x && (x.user_id === 0 || x.user_id === helloUserId));
  }

  // wanted is whether m is something its room's setting asks to hear of.
  function wanted(m) {
    if (helloUserId === null || m.user_id === helloUserId) return false; // never our own
    const level = levelOf(m.room);
    if (level === 'none') return false;
    return level === 'all' || knownRooms.get(m.room)?.kind === 'direct' || mentionsMe(m);
  }

  // A tab in front holds a lock named for it, so any tab can tell whether
  // one of ours is in front: navigator.locks.query sees every tab's locks.
  // The lock is granted a moment after it is asked for; a tab sent back in
  // that moment (a person leafing through tabs) must not then hold it, or
  // every tab would believe one of ours is in front, and stay silent.
  let releaseFront = null;
  let askingFront = false;
  function holdFront() {
    if (!navigator.locks) return;
    if (document.hidden) {
      if (releaseFront) releaseFront();
      releaseFront = null;
      return;
    }
    if (releaseFront || askingFront) return;
    askingFront = true;
    navigator.locks.request('nochat-front:' + tabId, () => {
      askingFront = false;
      if (document.hidden) return null; // back in the background already
      return new Promise((resolve) => { releaseFront = resolve; });
    }).catch(() => { askingFront = false; });
  }

  async function anyTabInFront() {
    if (!document.hidden) return true;
    if (!navigator.locks) return false;
    const { held } = await navigator.locks.query();
    return held.some((l) => l.name.startsWith('nochat-front:'));
  }

  // claim is true in the one tab that announces message id. The browser
  // keeps locks in one place for every tab, so the first tab to take the
  // lock named for the message has it, and the others are told at once it
  // is taken. localStorage alone cannot decide: each tab reads its own copy,
  // which learns of another tab's write a moment later, and two tabs would
  // both find the message unannounced. The claim holds its lock for a
  // minute, long enough for every copy to hold the mark, which answers for
  // a tab that gets the message later (back from an outage). Each mark is
  // a key of its own, so that two tabs marking two messages at once do not
  // write over each other's; a page, as it loads, lets go of marks older
  // than a day.
  const CLAIM_HOLD_MS = 60 * 1000;
  const ANNOUNCED_PREFIX = 'nochat:announced:';
  const ANNOUNCED_FOR_MS = 24 * 60 * 60 * 1000;
  function announced(id) { return getItem(ANNOUNCED_PREFIX + id) !== null; }
  function markAnnounced(id) { setItem(ANNOUNCED_PREFIX + id, String(Date.now())); }
  try {
    const now = Date.now();
    for (let i = localStorage.length - 1; i >= 0; i--) {
      const k = localStorage.key(i);
      if (k && k.startsWith(ANNOUNCED_PREFIX) && !(now - Number(localStorage.getItem(k)) < ANNOUNCED_FOR_MS)) {
        localStorage.removeItem(k);
      }
    }
    localStorage.removeItem('nochat:announced'); // an earlier version's list of marks
  } catch { /* storage unavailable: the lock still decides */ }
  function claim(id) {
    if (announced(id)) return Promise.resolve(false);
    if (!navigator.locks) {
      markAnnounced(id);
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      navigator.locks.request('nochat-announce:' + id, { ifAvailable: true }, (lock) => {
        if (lock === null || announced(id)) {
          resolve(false);
          return null;
        }
        markAnnounced(id);
        resolve(true);
        return new Promise((done) => setTimeout(done, CLAIM_HOLD_MS));
      }).catch(() => resolve(false));
    });
  }

  // announce tells of m, if its room's setting asks for it and no tab of
  // ours is in front.
  async function announce(m) {
    if (!wanted(m) || await anyTabInFront() || !await claim(m.id)) return;
    if (getItem(SOUND_KEY) === 'on') chime();
    if (!canNotify || Notification.permission !== 'granted') return;
    const r = knownRooms.get(m.room);
    const slug = r ? r.slug : room.slug;
    const title = r?.kind === 'direct' ? m.user : `${m.user} in ${r ? r.title || r.name : $('room-name-text').textContent}`;
    const opts = {
      body: m.message.length > 120 ? m.message.slice(0, 119) + '…' : m.message,
      tag: 'nochat-' + m.id, // a push of the same message replaces it
      icon: appIcon,
      data: { url: permalinkOf(slug, m.id) },
    };
    try {
      // Through the worker where there is one: its click handler opens the
      // message, and phones allow no other way.
      const reg = canPush ? await navigator.serviceWorker.getRegistration() : null;
      if (reg && reg.active) {
        await reg.showNotification(title, opts);
        return;
      }
      const n = new Notification(title, opts);
      n.onclick = () => { n.close(); window.focus(); openMessage(slug, m.id); };
    } catch { /* the browser would not show it: nothing more to do */ }
  }

  // openMessage shows message id of room slug, in this page.
  function openMessage(slug, id) {
    if (slug === room.slug) showMessage(id);
    else switchRoom(slug, true, id);
  }

  // chime is a short two-note sound. Browsers let a page play sound only
  // after a person used it, so the audio starts with a click or a key.
  let audio = null;
  function unlockAudio() {
    if (getItem(SOUND_KEY) !== 'on' || !window.AudioContext) return;
    try {
      audio = audio || new AudioContext();
      if (audio.state === 'suspended') audio.resume();
    } catch { /* no sound here */ }
  }
  function chime() {
    if (!audio) return;
    const t = audio.currentTime;
    [[0, 660], [0.13, 990]].forEach(([at, hz]) => {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = hz;
      gain.gain.setValueAtTime(0.0001, t + at);
      gain.gain.exponentialRampToValueAtTime(0.18, t + at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + at + 0.3);
      osc.connect(gain).connect(audio.destination);
      osc.start(t + at);
      osc.stop(t + at + 0.32);
    });
  }
  document.addEventListener('pointerdown', unlockAudio);
  document.addEventListener('keydown', unlockAudio);

  // unreadTotal is what the title and icons count: messages of the shown
  // room that came while we were away, and the unread of every other room
  // we have not silenced.
  function unreadTotal() {
    let n = document.hidden ? unread : 0;
    for (const a of document.querySelectorAll('#sidebar a.room-link[data-unread]')) {
      const id = Number(a.dataset.roomId);
      if (id !== room.id && levelOf(id) !== 'none') n += Number(a.dataset.unread) || 0;
    }
    return n;
  }

  let badgeShown = 0;
  let iconImg = null;
  function updateBadge() {
    const n = unreadTotal();
    document.title = n ? `(${n > 99 ? '99+' : n}) ${baseTitle}` : baseTitle;
    if (n === badgeShown) return;
    badgeShown = n;
    if (navigator.setAppBadge) (n ? navigator.setAppBadge(n) : navigator.clearAppBadge()).catch(() => {});
    if (!iconLink) return;
    if (!n) {
      iconLink.type = 'image/svg+xml';
      iconLink.href = iconHref;
      return;
    }
    if (!iconImg) {
      iconImg = new Image();
      iconImg.src = iconHref;
    }
    const draw = () => {
      if (badgeShown !== n) return; // a newer count draws its own
      const c = document.createElement('canvas');
      c.width = c.height = 64;
      const g = c.getContext('2d');
      g.drawImage(iconImg, 0, 0, 64, 64);
      g.fillStyle = '#d92d20';
      g.beginPath();
      g.arc(44, 20, 20, 0, 2 * Math.PI);
      g.fill();
      g.fillStyle = '#ffffff';
      g.font = 'bold 26px system-ui, sans-serif';
      g.textAlign = 'center';
      g.textBaseline = 'middle';
      g.fillText(n > 9 ? '9+' : String(n), 44, 21);
      iconLink.type = 'image/png';
      iconLink.href = c.toDataURL('image/png');
    };
    if (iconImg.complete && iconImg.naturalWidth) draw();
    else iconImg.addEventListener('load', draw, { once: true });
  }

  // showNotifySettings marks the shown room's level and what the browser
  // allows.
  function showNotifySettings() {
    if (!notifyMenu) return;
    const level = levelOf(room.id);
    for (const b of notifyMenu.querySelectorAll('.notify-level')) {
      b.setAttribute('aria-pressed', String(b.dataset.level === level));
    }
    soundBox.checked = getItem(SOUND_KEY) === 'on';
    notifyBtn.hidden = false;
    if (!canNotify) {
      notifyBtn.disabled = true;
      notifyBtn.textContent = 'Browser notifications need HTTPS';
      return;
    }
    const p = Notification.permission;
    notifyBtn.disabled = p !== 'default';
    notifyBtn.textContent = p === 'granted' ? 'Browser notifications are on'
      : p === 'denied' ? 'Notifications are blocked in this browser' : 'Turn on browser notifications';
  }

  // setLevel keeps a room's level, as chosen here or in another tab.
  function setLevel(id, level) {
    const r = knownRooms.get(id);
    if (r) r.notify = level;
    else knownRooms.set(id, { id, notify: level });
    const a = roomLink(id);
    if (a) a.dataset.notify = level;
    showNotifySettings();
    updateBadge();
  }

  function onNotify(d) {
    if (d && Number.isSafeInteger(d.room) && ['all', 'mentions', 'none'].includes(d.level)) setLevel(d.room, d.level);
  }

  notifyMenu?.addEventListener('click', async (ev) => {
    const b = ev.target.closest('.notify-level');
    if (!b) return;
    try {
      const d = await api('PUT', `/rooms/${encodeURIComponent(room.slug)}/notify`, { level: b.dataset.level });
      setLevel(room.id, d.level);
    } catch (err) { notice('Could not change notifications: ' + err.message); }
  });
  notifyBtn?.addEventListener('click', async () => {
    const p = await Notification.requestPermission();
    showNotifySettings();
    if (p === 'granted') subscribePush(true);
  });
  // Allowed or blocked elsewhere (the browser's site settings, or its
  // prompt answered in another tab): the menu says so, and an allowed
  // browser is subscribed at once, not at the next load.
  if (canNotify && navigator.permissions) {
    navigator.permissions.query({ name: 'notifications' }).then((status) => {
      status.addEventListener('change', () => {
        showNotifySettings();
        if (Notification.permission === 'granted') subscribePush(false);
      });
    }).catch(() => { /* the browser cannot tell: the menu shows it at the next change */ });
  }
  soundBox?.addEventListener('change', () => {
    setItem(SOUND_KEY, soundBox.checked ? 'on' : 'off');
    unlockAudio();
    if (soundBox.checked) chime(); // this is what it sounds like
  });

  function fromBase64url(s) {
    const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/'));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  }

  // subscribePush gives the server this browser's push subscription, so
  // notifications reach it with every NoChat page closed. It runs on each
  // load too: the subscription belongs to the session it was given with.
  // One runs at a time: the prompt answered fires both the button's
  // handler and the permission's change, the change first. A failure is
  // told to whoever asked out loud (the button), even when it joined
  // the quiet attempt already under way.
  let subscribing = null;
  function subscribePush(loud) {
    if (!canPush || !signedIn || Notification.permission !== 'granted') return;
    if (!subscribing) subscribing = givePushSubscription().finally(() => { subscribing = null; });
    return subscribing.catch((err) => {
      if (loud) notice('Notifications reach you while NoChat is open; with the browser closed they could not be set up (' + err.message + ').');
    });
  }
  async function givePushSubscription() {
    const reg = await navigator.serviceWorker.ready;
    const { key } = await api('GET', '/push/key');
    const want = fromBase64url(key);
    let sub = await reg.pushManager.getSubscription();
    // One made with another key is never pushed to (a cluster's nodes
    // each had their own before they shared one): make it anew.
    const had = sub && sub.options && sub.options.applicationServerKey;
    if (had && !sameBytes(new Uint8Array(had), want)) {
      await sub.unsubscribe();
      sub = null;
    }
    if (!sub) sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: want });
    await api('POST', '/push/subscriptions', sub.toJSON());
  }
  function sameBytes(a, b) {
    return a.length === b.length && a.every((x, i) => x === b[i]);
  }

  // ---------- the installable app ----------

  // The service worker keeps the app for offline use and shows pushes. A
  // new NoChat is a new worker, which takes over at once: this page still
  // runs the old one's script, so it offers a reload.
  function offerUpdate() {
    if ($('update-banner')) return;
    const bar = document.createElement('div');
    bar.id = 'update-banner';
    bar.className = 'update-banner';
    bar.setAttribute('role', 'status');
    const text = document.createElement('span');
    text.textContent = 'NoChat was updated.';
    const btn = document.createElement('button');
    btn.type = 'button';
    btn.textContent = 'Reload';
    btn.addEventListener('click', () => location.reload());
    bar.append(text, btn);
    document.body.append(bar);
  }
  if (canPush) {
    // The first worker taking over this page is not a new version.
    let controlled = !!navigator.serviceWorker.controller;
    navigator.serviceWorker.addEventListener('controllerchange', () => {
      if (controlled) offerUpdate();
      controlled = true;
    });
    navigator.serviceWorker.register('/sw.js').then(() => subscribePush(false)).catch(() => { /* served without it */ });
  }
  // A server restart (an upgrade) reconnects the socket: look for a new
  // worker then.
  function checkForUpdate() {
    if (canPush) navigator.serviceWorker.getRegistration().then((r) => r && r.update()).catch(() => {});
  }

  document.addEventListener('visibilitychange', holdFront);
  holdFront();

  // ---------- rooms ----------

  const sidebar = $('sidebar');
  const roomLists = { room: $('room-list'), dm: $('dm-list'), browse: $('browse-list') };
  const drawerBtn = $('drawer-open');
  const drawerBadge = $('drawer-badge');
  const backdrop = $('drawer-backdrop');
  const roomMenu = $('room-menu');

  // historyURL is where the shown room's history is read: the tutorial's
  // routes for the lobby without sign-in, the rooms' API otherwise.
  function historyURL() {
    return room.id === 1 && !signedIn ? '/discussion' : `/rooms/${encodeURIComponent(room.slug)}/messages`;
  }

  function roomLink(id) {
    return sidebar.querySelector(`a.room-link[data-room-id="${id}"]`);
  }

  function setUnread(a, n, mention) {
    const badge = a.querySelector('.badge');
    if (n > 0) {
      a.dataset.unread = String(n);
      badge.textContent = n > 99 ? '99+' : String(n);
      badge.hidden = false;
    } else {
      delete a.dataset.unread;
      badge.hidden = true;
    }
    // Heard after the name, as views.unreadWords has it.
    const words = a.querySelector('.unread-words');
    if (words) words.textContent = n > 0 ? `, ${n} unread` : '';
    if (mention !== undefined) a.querySelector('.mention').hidden = !mention;
    updateDrawerBadge();
  }

  function updateDrawerBadge() {
    let n = 0;
    for (const a of sidebar.querySelectorAll('a.room-link[data-unread]')) {
      if (Number(a.dataset.roomId) !== room.id) n += Number(a.dataset.unread) || 0;
    }
    drawerBadge.hidden = n === 0;
    drawerBadge.textContent = n > 99 ? '99+' : String(n);
    drawerBtn.setAttribute('aria-label', n === 0 ? 'Rooms' : `Rooms, ${n} unread elsewhere`);
    updateBadge();
  }

  // otherRoomMessage counts a message of a room not shown: in its link,
  // with a mention marker when it names us, and in the title when hidden.
  function otherRoomMessage(m) {
    const a = roomLink(m.room);
    if (!a) { refreshRooms(); return; }
    const mention = helloUser !== '' && m.message.toLowerCase().includes('@' + helloUser.toLowerCase());
    setUnread(a, (Number(a.dataset.unread) || 0) + 1, mention || !a.querySelector('.mention').hidden);
    announce(m);
  }

  // markRead tells the server we have read the shown room to its newest
  // message, when the page is visible and at the bottom; every tab and
  // device of ours then shows the same count.
  let readSent = 0;
  let readTimer = 0;
  function markRead() {
    if (!signedIn || document.hidden || loadingUnread === listGen) return;
    clearTimeout(readTimer);
    readTimer = setTimeout(() => {
      // A room being opened, or its history reloaded: the list is not
      // the room's yet. Marked once it is.
      if (resyncing || loadingUnread === listGen) return;
      const items = realItems();
      const newest = items.length ? msgIdOf(items[items.length - 1]) : 0;
      // Looking at a permalink's past, the newest is not on the page.
      if (!newest || !nearBottom() || detached) return;
      // An open room looked into is none of ours: nothing to mark read.
      if (!room.member) return;
      const a = roomLink(room.id);
      if (a) {
        setUnread(a, 0, false);
        if (newest > (Number(a.dataset.lastRead) || 0)) a.dataset.lastRead = String(newest);
      }
      if (newest > readSent && send('read', { room: room.id, id: newest })) readSent = newest;
    }, 300);
  }

  // refreshRooms reads our rooms and their unread counts again and redraws
  // the list: after a membership or room change, a read in another tab, a
  // reconnect. Calls close together are one request.
  let refreshTimer = 0;
  function refreshRooms() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(async () => {
      refreshTimer = 0;
      try {
        const res = await fetch('/rooms?include=open', { headers: { Accept: 'application/json' }, cache: 'no-store' });
        if (!res.ok) return;
        const rooms = await res.json();
        if (Array.isArray(rooms)) renderRooms(rooms);
      } catch { /* the next change tries again */ }
    }, 150);
  }

  const MARK = { open: '#', private: '', direct: '@' }; // private: a padlock, by CSS
  function buildRoomLink(r) {
    const li = document.createElement('li');
    const a = document.createElement('a');
    a.className = 'room-link';
    const span = (className) => {
      const el = document.createElement('span');
      el.className = className;
      return el;
    };
    const mark = span('room-mark');
    mark.setAttribute('aria-hidden', 'true');
    // As views.roomLink: the marks seen, and the words heard.
    const mention = span('mention');
    const at = span('');
    at.textContent = '@';
    at.setAttribute('aria-hidden', 'true');
    const said = span('visually-hidden');
    said.textContent = ', you were mentioned';
    mention.append(at, said);
    mention.title = 'You were mentioned';
    const badge = span('badge');
    badge.setAttribute('aria-hidden', 'true');
    a.append(mark, span('room-link-name'), mention, badge, span('unread-words visually-hidden'));
    li.append(a);
    fillRoomLink(a, r);
    return li;
  }

  // fillRoomLink makes a (built here, or by the server, alike) show room
  // r, changing only what differs.
  function fillRoomLink(a, r) {
    const set = (el, name, value) => {
      if (value == null) el.removeAttribute(name);
      else if (el.getAttribute(name) !== value) el.setAttribute(name, value);
    };
    const text = (el, value) => { if (el.textContent !== value) el.textContent = value; };
    set(a, 'href', '/r/' + encodeURIComponent(r.slug));
    set(a, 'data-room-id', String(r.id));
    set(a, 'data-slug', r.slug);
    set(a, 'data-kind', r.kind);
    set(a, 'data-last-read', String(r.last_read || 0));
    set(a, 'data-notify', r.notify || null);
    set(a, 'aria-current', r.id === room.id ? 'page' : null);
    const mark = a.querySelector('.room-mark');
    set(mark, 'data-kind', r.kind);
    text(mark, MARK[r.kind] ?? '#');
    text(a.querySelector('.room-link-name'), r.title || r.name);
    const unreadHere = r.id === room.id && nearBottom() && !document.hidden ? 0 : r.unread;
    setUnread(a, unreadHere || 0, !!r.mention && unreadHere > 0);
  }

  let knownRooms = new Map(); // id -> room, from the last /rooms
  function renderRooms(rooms) {
    // A room gone from the list (left, removed, archived) is no longer
    // one to read offline either: its kept copy goes.
    const gone = [...knownRooms.values()].filter((r) => typeof r.slug === 'string' && !rooms.some((n) => n.id === r.id));
    if (gone.length && 'caches' in window) {
      caches.open(PAGES).then((c) => Promise.all(gone.map((r) => c.delete(location.origin + '/r/' + encodeURIComponent(r.slug))))).catch(() => {});
    }
    knownRooms = new Map(rooms.map((r) => [r.id, r]));
    // Each link stays the node it was, changed where the room changed, and
    // stays in the page unless its room left the list: the list is read
    // again whenever another tab reads a room, and a tap at that instant
    // must still land on the link under the finger.
    const shown = new Map();
    for (const a of sidebar.querySelectorAll('a.room-link[data-room-id]')) {
      if (Object.values(roomLists).includes(a.closest('ul'))) shown.set(a.dataset.roomId, a);
    }
    const lists = { room: [], dm: [], browse: [] };
    for (const r of rooms) {
      if (!Number.isSafeInteger(r.id) || typeof r.slug !== 'string') continue;
      const which = !r.member && signedIn ? 'browse' : r.kind === 'direct' ? 'dm' : 'room';
      const a = shown.get(String(r.id));
      if (a) fillRoomLink(a, r);
      lists[which].push(a ? a.closest('li') : buildRoomLink(r));
    }
    for (const [k, ul] of Object.entries(roomLists)) {
      if (!ul) continue;
      // Only a link out of its place moves: the others are never taken
      // out of the page, not even for a moment.
      lists[k].forEach((li, i) => { if (ul.children[i] !== li) ul.insertBefore(li, ul.children[i] || null); });
      while (ul.children.length > lists[k].length) ul.lastElementChild.remove();
    }
    updateDrawerBadge();
    const here = knownRooms.get(room.id);
    if (here) showRoomHead(here);
    showNotifySettings();
  }

  // showRoomHead puts the shown room's name and topic in the header.
  function showRoomHead(r) {
    const title = r.title || r.name || '';
    $('room-name-text').textContent = title;
    const mark = $('room-name').querySelector('.room-mark');
    mark.dataset.kind = r.kind;
    mark.textContent = MARK[r.kind] ?? '#';
    const topic = $('room-topic');
    topic.textContent = r.topic || '';
    topic.hidden = !r.topic;
    baseTitle = room.id === 1 ? 'NoChat' : `${title} · NoChat`;
    updateBadge();
  }

  // applyRights shows what we may do in the shown room: the composer, or
  // why not; the room menu's entries.
  function applyRights(d) {
    document.body.toggleAttribute('data-may-post', !!d.may_post);
    room.manage = !!d.manage;
    room.archived = !!d.archived;
    room.member = !!d.member;
    room.kind = d.kind;
    if (notifyMenu) notifyMenu.hidden = !d.member;
    showNotifySettings();
    for (const li of realItems()) addActions(li);
    const why = d.may_post ? ''
      : d.archived ? 'This room is archived: it is read-only.'
      : !signedIn ? 'Sign in to send messages here.'
      : d.post === 'admins' ? 'Only admins post in this room.'
      : !d.member && d.kind === 'open' ? 'Join this room to post in it.'
      : 'You cannot post here.';
    // An open room looked into: a button to join instead of a composer.
    const looking = signedIn && !d.member && d.kind === 'open' && !d.archived;
    $('join-bar').hidden = !looking;
    form.hidden = looking;
    if (looking) $('join-name').textContent = $('room-name-text').textContent;
    if (!ended) {
      msgInput.disabled = !!why;
      sendBtn.disabled = !!why;
      if (fileInput) attachBtn.disabled = !!why;
      msgInput.placeholder = why || 'Write a message…';
      if (!why) updateCounter();
    }
    if (!roomMenu) return;
    $('room-invite').hidden = !d.invite || d.id === 1; // everyone is in the default room
    $('room-join').hidden = !!d.member || d.kind !== 'open' || !!d.archived;
    $('room-leave').hidden = !d.member || d.id === 1 || d.kind === 'direct';
    $('room-edit').hidden = !d.manage || d.kind === 'direct';
    $('room-archive').hidden = !d.manage || d.id === 1 || !!d.archived;
    // The same rule as GET /rooms/{slug}/webhooks: who manages the room.
    if ($('room-hooks')) $('room-hooks').hidden = !d.manage || d.kind === 'direct';
  }

  async function roomDetail(slug) {
    const res = await fetch(`/rooms/${encodeURIComponent(slug)}`, { headers: { Accept: 'application/json' }, cache: 'no-store' });
    if (!res.ok) throw new Error(res.status === 404 ? 'no such room, or it is not one of yours' : `HTTP ${res.status}`);
    return res.json();
  }

  // showPending puts the shown room's unsent messages at the bottom.
  function showPending() {
    for (const li of list.querySelectorAll('li.msg[data-cid]:not([data-id])')) li.remove();
    for (const item of queue) {
      if ((item.room || 1) !== room.id) continue;
      const li = buildPending(item);
      stateLabel(li).textContent = ready ? 'sending' : 'waiting';
      list.append(li);
    }
  }

  // switchRoom shows another room without reloading: its history over
  // REST, while frames that arrive meanwhile are held (as in resync), then
  // its header, rights and unsent messages. The address bar follows. With
  // at, the room opens around that message (a permalink), marked.
  async function switchRoom(slug, push, at) {
    closeDrawer(typingPlace());
    if (slug === room.slug && at && focusMessage(at, true)) {
      newList(); // a message looked at: the pages before the first unread are not wanted now
      if (push) history.pushState({ slug: room.slug, at }, '', permalinkOf(room.slug, at));
      return;
    }
    if (slug === room.slug && push && !at && !detached) { scrollToBottom(); markRead(); return; }
    if (resyncing) return;
    resyncing = [];
    newList();
    const prev = { ...room };
    try {
      const d = signedIn || slug !== 'lobby' ? await roomDetail(slug) : { id: 1, slug: 'lobby', kind: 'open', may_post: true };
      room.id = d.id;
      room.slug = d.slug;
      let msgs, older, newer = false;
      if (at) {
        // Half a page either side; a full half says there may be more.
        msgs = await fetchMessages(`/rooms/${encodeURIComponent(room.slug)}/messages?around=${at}&limit=${PAGE}`);
        const half = Math.max(1, Math.floor(PAGE / 2));
        older = msgs.filter((m) => m.id < at).length >= half;
        newer = msgs.filter((m) => m.id > at).length >= half;
      } else {
        ({ msgs, older } = await historyPage(0));
      }
      list.replaceChildren(...msgs.map(buildMessage));
      settling = null; // a settle due for the room shown before must not scroll this one
      olderBtn.hidden = !older;
      detached = newer;
      newerBtn.hidden = !newer;
      setReplying(null); // a reply answers a message of its own room
      closeMentions();
      typers.clear();
      renderTyping();
      showPending();
      if (fileInput) showUploads();
      for (const a of sidebar.querySelectorAll('a.room-link')) {
        if (Number(a.dataset.roomId) === room.id) a.setAttribute('aria-current', 'page');
        else a.removeAttribute('aria-current');
      }
      document.body.dataset.roomId = String(room.id);
      document.body.dataset.roomSlug = room.slug;
      const known = knownRooms.get(room.id);
      showRoomHead(known ? { ...d, title: known.title } : { ...d, title: roomLink(room.id)?.querySelector('.room-link-name')?.textContent || d.name });
      applyRights(d);
      if (push && at) history.pushState({ slug: room.slug, at }, '', permalinkOf(room.slug, at));
      else if (push) history.pushState({ slug: room.slug }, '', room.id === 1 && !signedIn ? '/' : '/r/' + room.slug);
      regroup();
      retint();
      jumpBtn.hidden = true;
      if (!at || !focusMessage(at, true)) openAtUnread(Number(roomLink(room.id)?.dataset.lastRead) || 0);
      readSent = 0;
      markRead();
      keepOffline(room.slug);
      if (prev.slug !== room.slug) keepOffline(prev.slug, true); // as it was left
    } catch (err) {
      room.id = prev.id;
      room.slug = prev.slug;
      notice('Could not open the room: ' + err.message);
    } finally {
      const held = resyncing;
      resyncing = null;
      for (const [type, d] of held) onFrame(type, d);
    }
  }

  // forgetOthersPages drops the rooms kept for offline use when whoever
  // kept them is not who this page is (a shared tablet: signed in as
  // another without signing out, which would have cleared them), so that
  // nobody reads another's conversations offline; then keeps this room.
  function forgetOthersPages() {
    if (!('caches' in window)) return;
    const me = String(helloUserId ?? 'guest');
    const was = getItem(PAGES_OF);
    if (was === me) return;
    setItem(PAGES_OF, me);
    keptAt.clear();
    caches.delete(PAGES).then(() => keepOffline(room.slug)).catch(() => {});
  }

  // keepOffline stores a room opened in the page (no page load, which the
  // service worker would have kept) as the worker stores a page it loads,
  // in its cache (sw.js's PAGES): reloaded offline, the room then opens as
  // last seen, where the worker would otherwise have no copy of it to give.
  //
  // A copy is taken as the room is entered (at most every KEEP_EVERY: each
  // is a page the server renders), as it is left (always: the freshest),
  // and as the page is put away (another tab, the phone locked). It is
  // dropped when the room is no longer this person's to open (left,
  // removed: 404; signed out meanwhile: the page a redirect leads to). One
  // finishing after its person signed out (the answer cleared the
  // browser's copies, PAGES_OF too), or as the page goes, is not stored.
  const KEEP_EVERY = 30_000;
  const keptAt = new Map(); // slug → when its copy was taken
  const keeping = new AbortController(); // this page's copies under way
  window.addEventListener('pagehide', () => keeping.abort());
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'hidden' && ready) keepOffline(room.slug);
  });
  function keepOffline(slug, leaving) {
    if (!('caches' in window) || !navigator.serviceWorker?.controller || keeping.signal.aborted) return;
    if (!leaving && Date.now() - (keptAt.get(slug) || 0) < KEEP_EVERY) return;
    keptAt.set(slug, Date.now());
    const url = location.origin + '/r/' + encodeURIComponent(slug);
    const whose = getItem(PAGES_OF);
    (async () => {
      const res = await fetch(url, { headers: { Accept: 'text/html' }, redirect: 'manual', signal: keeping.signal });
      const cache = await caches.open(PAGES);
      if (res.type === 'opaqueredirect' || res.status === 403 || res.status === 404) {
        await cache.delete(url);
        return;
      }
      if (!res.ok || !(res.headers.get('Content-Type') || '').startsWith('text/html')) return;
      if (keeping.signal.aborted || getItem(PAGES_OF) !== whose) return;
      await cache.put(url, res);
    })().catch(() => {}); // a copy for offline is a courtesy
  }

  sidebar.addEventListener('click', (ev) => {
    const a = ev.target.closest('a.room-link');
    if (!a || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.button !== 0) return;
    ev.preventDefault();
    switchRoom(a.dataset.slug, true);
  });
  window.addEventListener('popstate', () => {
    const m = location.pathname.match(/^\/r\/([^/]+)(?:\/(\d+))?$/);
    switchRoom(m ? decodeURIComponent(m[1]) : 'lobby', false, m && m[2] ? Number(m[2]) : 0);
  });
  // A message's time is its permalink: on this page, it marks the message
  // and takes the address bar, to copy.
  list.addEventListener('click', (ev) => {
    const a = ev.target.closest('a.permalink');
    if (!a || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.button !== 0) return;
    const id = msgIdOf(a.closest('li.msg'));
    if (!id) return;
    ev.preventDefault();
    focusMessage(id);
    history.pushState({ slug: room.slug, at: id }, '', permalinkOf(room.slug, id));
  });
  newerBtn.addEventListener('click', () => switchRoom(room.slug, true));

  function onMembership(d) {
    if (!d || !Number.isSafeInteger(d.room)) return;
    if (d.room === room.id) peopleFor = 0; // the people to mention changed
    if (d.user_id === helloUserId) {
      refreshRooms();
      if (d.room === room.id) {
        if (!d.joined && d.info && d.info.kind !== 'open') {
          notice(`You are no longer in ${d.info.name || 'this room'}.`);
          switchRoom('lobby', true);
        } else {
          roomDetail(room.slug).then(applyRights).catch(() => {});
          // Joined a room looked into: its messages since the page loaded
          // were not on this socket.
          if (d.joined) resync();
        }
      }
    }
  }

  // onRole: an admin made this account an admin, or a member again. What
  // the page offers follows at once: delete buttons, the room's rights,
  // the dashboard's link (a new admin's page has none: a reload brings it).
  function onRole(d) {
    if (!d || (d.role !== 'admin' && d.role !== 'member')) return;
    const now = d.role === 'admin';
    if (now === isAdmin) return;
    isAdmin = now;
    document.body.toggleAttribute('data-admin', now);
    for (const li of realItems()) addActions(li);
    roomDetail(room.slug).then((r) => applyRights(r)).catch(() => {});
    const dashboard = $('side-admin');
    if (dashboard) dashboard.hidden = !now;
    notice(now ? `You are an admin now${dashboard ? '' : ': reload the page for the dashboard'}.` : 'You are no longer an admin.');
  }

  function onRoom(d) {
    if (!d || !Number.isSafeInteger(d.id)) return;
    refreshRooms();
    if (d.id === room.id) roomDetail(room.slug).then((r) => { showRoomHead({ ...r, title: knownRooms.get(r.id)?.title || r.name }); applyRights(r); }).catch(() => {});
  }

  // ---------- the drawer (a phone's room list) ----------

  // While the drawer is open the page behind it is inert: Tab stays in
  // the drawer, as in a dialog. Closed, it gives the focus it had to back
  // (its button unless said).
  const behindDrawer = [document.querySelector('.skip'), document.querySelector('header.top'), scroller, document.querySelector('footer.bottom')].filter(Boolean);
  function openDrawer() {
    document.body.classList.add('drawer');
    backdrop.hidden = false;
    drawerBtn.setAttribute('aria-expanded', 'true');
    for (const el of behindDrawer) el.inert = true;
    (sidebar.querySelector('a[aria-current]') || sidebar.querySelector('a, button'))?.focus();
  }
  function closeDrawer(back = drawerBtn) {
    if (!document.body.classList.contains('drawer')) return;
    const had = sidebar.contains(document.activeElement);
    document.body.classList.remove('drawer');
    backdrop.hidden = true;
    drawerBtn.setAttribute('aria-expanded', 'false');
    for (const el of behindDrawer) el.inert = false;
    if (had) back?.focus();
  }
  drawerBtn.addEventListener('click', openDrawer);
  $('drawer-close').addEventListener('click', () => closeDrawer());
  backdrop.addEventListener('click', () => closeDrawer());
  // Escape closes it, unless a dialog opened from it is what Escape closes.
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && !document.querySelector('dialog[open]')) closeDrawer();
  });
  // Wider than a phone the list is in its place, not a drawer (style.css's
  // 760px): an open drawer closes, or the page behind would stay inert.
  window.matchMedia('(max-width: 760px)').addEventListener('change', (ev) => { if (!ev.matches) closeDrawer(null); });

  // ---------- creating, inviting, leaving ----------

  async function api(method, url, body) {
    const res = await fetch(url, {
      method,
      headers: { Accept: 'application/json', 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await res.json(); } catch { /* 204 */ }
    if (!res.ok) throw new Error((data && data.error) || `HTTP ${res.status}`);
    return data;
  }

  const names = (v) => String(v || '').split(',').map((n) => n.trim()).filter(Boolean);

  // A dialog's Cancel (data-close) closes it without sending its form.
  document.addEventListener('click', (ev) => {
    const b = ev.target.closest('button[data-close]');
    if (b) b.closest('dialog')?.close();
  });

  // openDialog shows a modal dialog; when it closes with the focus nowhere
  // (in it, or on the page's body), the focus goes back to back, or if that
  // is hidden now to the message box, or the messages.
  function openDialog(dialog, back = document.activeElement) {
    dialog.addEventListener('close', () => {
      const at = document.activeElement;
      if (at && at !== document.body && !dialog.contains(at)) return; // put somewhere on purpose
      for (const el of [back, msgInput, scroller]) {
        if (!el || el === document.body || !el.isConnected || el.disabled || el.checkVisibility?.({ visibilityProperty: true }) === false) continue;
        el.focus();
        if (document.activeElement === el) return;
      }
    }, { once: true });
    dialog.showModal();
  }

  // answered opens a question's dialog (a form of method dialog whose
  // buttons are valued cancel and ok): true once ok is chosen.
  function answered(dialog, back) {
    dialog.returnValue = '';
    return new Promise((resolve) => {
      dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
      openDialog(dialog, back);
    });
  }

  // menuOpener is what a dialog opened from the room's menu gives the
  // focus back to: the menu's button, since the menu closes as it opens.
  function menuOpener() {
    return roomMenu?.contains(document.activeElement) ? roomMenu.querySelector('summary') : document.activeElement;
  }

  // formDialog opens a dialog whose form is sent by action(values); a
  // refusal is shown in the dialog, which stays open to fix it. What
  // action returns, if anything, takes the focus once it is done.
  function formDialog(id, action) {
    const dialog = $(id);
    if (!dialog) return () => {};
    const form = dialog.querySelector('form');
    const error = dialog.querySelector('.form-error');
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (!form.reportValidity()) return;
      const values = Object.fromEntries(new FormData(form));
      const ok = form.querySelector('button[value="ok"]');
      ok.disabled = true;
      try {
        const next = await action(values);
        dialog.close();
        form.reset();
        next?.focus();
      } catch (err) {
        error.textContent = err.message;
        error.hidden = false;
      } finally {
        ok.disabled = false;
      }
    });
    return () => {
      error.hidden = true;
      const back = menuOpener();
      if (roomMenu) roomMenu.open = false;
      openDialog(dialog, back);
    };
  }

  if (signedIn) {
    const newRoom = formDialog('new-room-dialog', async (v) => {
      const r = await api('POST', '/rooms', {
        name: v.name, kind: v.kind, topic: v.topic, members: names(v.members),
        post: v.post || 'everyone', guests: v.guests === 'true' && v.kind === 'open',
      });
      refreshRooms();
      await switchRoom(r.slug, true);
      return typingPlace();
    });
    const newDM = formDialog('new-dm-dialog', async (v) => {
      const r = await api('POST', '/rooms', { kind: 'direct', members: names(v.members) });
      refreshRooms();
      await switchRoom(r.slug, true);
      return typingPlace();
    });
    const invite = formDialog('invite-dialog', async (v) => {
      const m = await api('POST', `/rooms/${encodeURIComponent(room.slug)}/members`, { user: v.user });
      notice(`${m.user} is in the room now.`);
    });
    const edit = formDialog('edit-dialog', async (v) => {
      const change = { name: v.name, topic: v.topic };
      if (v.post && v.post !== $('edit-form').dataset.post) change.post = v.post;
      if ($('edit-form').elements.guests) change.guests = v.guests === 'true';
      await api('PATCH', `/rooms/${encodeURIComponent(room.slug)}`, change);
    });
    $('new-room')?.addEventListener('click', newRoom);
    $('new-dm')?.addEventListener('click', newDM);
    $('room-invite')?.addEventListener('click', invite);
    // Who is in the room: its members, those online first, each marked.
    $('room-people')?.addEventListener('click', async () => {
      const back = menuOpener();
      roomMenu.open = false;
      const dialog = $('people-dialog');
      const ul = $('room-people-list');
      const status = $('room-people-status');
      ul.replaceChildren();
      status.textContent = 'Loading…';
      openDialog(dialog, back);
      try {
        const d = await roomDetail(room.slug);
        const people = (Array.isArray(d.people) ? d.people : []).filter((p) => p && typeof p.user === 'string' && Number.isSafeInteger(p.user_id));
        people.sort((a, b) => (onlineIds.has(b.user_id) - onlineIds.has(a.user_id)) || a.user.localeCompare(b.user));
        const here = people.filter((p) => onlineIds.has(p.user_id)).length;
        status.textContent = `${people.length} ${people.length === 1 ? 'member' : 'members'}, ${here} online`;
        ul.replaceChildren(...people.map((p) => {
          const li = document.createElement('li');
          li.classList.toggle('away', !onlineIds.has(p.user_id)); // dimmed
          li.title = onlineIds.has(p.user_id) ? 'Online now' : 'Not online';
          li.append(avatar(p.user, p.user_id));
          const name = document.createElement('span');
          name.className = 'who';
          name.textContent = p.user;
          li.append(name);
          const tag = p.user_id === helloUserId ? 'you' : p.role === 'admin' ? 'admin' : p.role === 'bot' ? 'bot' : '';
          if (tag) {
            const t = document.createElement('span');
            t.className = 'tag';
            t.textContent = tag;
            li.append(t);
          }
          return li;
        }));
      } catch (err) {
        status.textContent = 'Could not list them: ' + err.message;
      }
    });
    $('room-edit')?.addEventListener('click', async () => {
      const form = $('edit-form');
      try {
        const d = await roomDetail(room.slug);
        form.elements.name.value = d.name;
        form.elements.topic.value = d.topic || '';
        // A rule this person may not choose (admins only, for a creator
        // who is not an admin) is shown as it is and left alone.
        const post = form.elements.post;
        for (const o of [...post.options]) if (o.dataset.shown) o.remove();
        const choosable = [...post.options].some((o) => o.value === d.post);
        if (!choosable) {
          const o = new Option('Admins only (announcements)', d.post);
          o.dataset.shown = '1';
          post.add(o);
        }
        post.value = d.post;
        post.disabled = !choosable;
        form.dataset.post = d.post;
        if (form.elements.guests) {
          form.elements.guests.checked = !!d.guests;
          form.elements.guests.closest('label').hidden = d.kind !== 'open';
        }
      } catch (err) { notice('Could not read the room: ' + err.message); return; }
      edit();
    });
    const join = async () => {
      roomMenu.open = false;
      try {
        await api('POST', `/rooms/${encodeURIComponent(room.slug)}/join`);
      } catch (err) { notice('Could not join: ' + err.message); }
    };
    $('room-join')?.addEventListener('click', join);
    $('join-now')?.addEventListener('click', join);
    // ask puts a question on the room to its dialog: true if the person
    // chose to go on. The focus goes back to the room's menu either way
    // (the item pressed is hidden with the menu).
    const ask = (title, text, action) => {
      const dialog = $('room-ask');
      $('room-ask-title').textContent = title;
      $('room-ask-text').textContent = text;
      dialog.querySelector('button[value="ok"]').textContent = action;
      return answered(dialog, roomMenu.querySelector('summary'));
    };
    $('room-leave')?.addEventListener('click', async () => {
      roomMenu.open = false;
      const name = $('room-name-text').textContent;
      const back = room.kind === 'open' ? 'You can join it again from the list of rooms.' : 'To come back, someone in it must invite you again.';
      if (!await ask(`Leave ${name}?`, `It leaves your list of rooms. ${back}`, 'Leave')) return;
      try {
        await api('POST', `/rooms/${encodeURIComponent(room.slug)}/leave`);
        await switchRoom('lobby', true);
        notice(`You left ${name}.`);
      } catch (err) { notice('Could not leave: ' + err.message); }
    });
    $('room-archive')?.addEventListener('click', async () => {
      roomMenu.open = false;
      const name = $('room-name-text').textContent;
      if (!await ask(`Archive ${name}?`, 'It becomes read-only and leaves everyone’s list. Admins can unarchive it from the dashboard’s Rooms.', 'Archive')) return;
      try {
        await api('PATCH', `/rooms/${encodeURIComponent(room.slug)}`, { archived: true });
        await switchRoom('lobby', true);
        notice(`${name} is archived: read-only, and off everyone's list. Admins find it on the dashboard's Rooms.`);
      } catch (err) { notice('Could not archive: ' + err.message); }
    });
    document.addEventListener('click', (ev) => {
      if (roomMenu.open && !roomMenu.contains(ev.target)) roomMenu.open = false;
    });
    // Tabbing out of it closes it, as a click elsewhere does.
    roomMenu.addEventListener('focusout', (ev) => {
      if (roomMenu.open && ev.relatedTarget && !roomMenu.contains(ev.relatedTarget)) roomMenu.open = false;
    });
    // Escape closes it, as it does the list of who is online; focus that
    // was in it goes back to its button.
    document.addEventListener('keydown', (ev) => {
      if (ev.key !== 'Escape' || !roomMenu.open) return;
      const inside = roomMenu.contains(document.activeElement);
      roomMenu.open = false;
      if (inside) roomMenu.querySelector('summary').focus();
    });
    roomHooks();
  }
  applyRights({
    id: room.id,
    kind: document.body.dataset.roomKind,
    may_post: 'mayPost' in document.body.dataset,
    member: 'member' in document.body.dataset,
    manage: 'manage' in document.body.dataset,
    invite: 'invite' in document.body.dataset,
    archived: 'archived' in document.body.dataset,
    post: document.body.dataset.post,
  });
  history.replaceState({ slug: room.slug }, '');
  updateDrawerBadge();

  // ---------- a room's incoming webhooks ----------

  // roomHooks drives the Webhooks dialog of the room menu, for whoever
  // manages the room: the list from GET /rooms/{slug}/webhooks, a new one
  // by POST (its URL and curl lines, which the server writes with the
  // address it was reached at, shown this once), Delete after asking in
  // the row itself.
  function roomHooks() {
    const dialog = $('hooks-dialog');
    const opener = $('room-hooks');
    if (!dialog || !opener) return;
    const hookList = $('hooks-list');
    const status = $('hooks-status');
    const form = $('hooks-form');
    const error = form.querySelector('.form-error');
    const made = $('hooks-new');
    const whenFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
    const base = () => `/rooms/${encodeURIComponent(room.slug)}/webhooks`;
    let seq = 0; // a room switched meanwhile drops an older answer

    const fail = (err) => {
      error.textContent = err.message;
      error.hidden = false;
    };
    const el = (tag, cls, text) => {
      const e = document.createElement(tag);
      if (cls) e.className = cls;
      if (text !== undefined) e.textContent = text;
      return e;
    };

    function row(h) {
      const li = el('li', 'hook');
      li.dataset.id = String(h.id);
      li.dataset.name = h.name;
      const about = el('div', 'hook-about');
      about.append(el('span', 'hook-name', h.name));
      const when = el('span', 'hook-when',
        'Created ' + whenFmt.format(new Date(h.created)) +
        ' · ' + (h.last_used ? 'last used ' + whenFmt.format(new Date(h.last_used)) : 'never used'));
      about.append(when);
      const del = el('button', 'secondary hook-delete', 'Delete');
      del.type = 'button';
      del.setAttribute('aria-label', 'Delete the webhook ' + h.name);
      del.addEventListener('click', () => ask(li, h, del));
      li.append(about, del);
      return li;
    }

    // ask turns the row into the question, as the admin panel asks it.
    function ask(li, h, del) {
      const q = el('li', 'hook-ask');
      q.setAttribute('role', 'group');
      q.setAttribute('aria-label', 'Delete the webhook ' + h.name + '?');
      q.append(el('p', 'hook-q', 'Delete the webhook ' + h.name + '?'),
        el('p', 'note', 'Its URL stops working at once; its messages stay.'));
      const acts = el('div', 'actions');
      const no = el('button', 'secondary', 'Cancel');
      no.type = 'button';
      const yes = el('button', 'danger', 'Delete');
      yes.type = 'button';
      yes.className = 'danger hook-confirm';
      acts.append(no, yes);
      q.append(acts);
      li.hidden = true;
      li.after(q);
      no.addEventListener('click', () => { q.remove(); li.hidden = false; del.focus(); });
      yes.addEventListener('click', async () => {
        yes.disabled = true;
        error.hidden = true;
        try {
          await api('DELETE', `${base()}/${h.id}`);
          q.remove();
          li.remove();
          status.textContent = `Deleted the webhook ${h.name}.`;
          if (!hookList.children.length) status.textContent += ' No webhooks now.';
          form.elements.name.focus();
        } catch (err) {
          yes.disabled = false;
          fail(err);
        }
      });
      no.focus();
    }

    async function load() {
      const n = ++seq;
      hookList.replaceChildren();
      status.textContent = 'Loading…';
      try {
        const hooks = await api('GET', base());
        if (n !== seq) return;
        hookList.replaceChildren(...hooks.map(row));
        status.textContent = hooks.length ? '' : 'No webhooks yet.';
      } catch (err) {
        if (n !== seq) return;
        status.textContent = '';
        fail(err);
      }
    }

    opener.addEventListener('click', () => {
      roomMenu.open = false;
      error.hidden = true;
      made.hidden = true;
      for (const id of ['hook-url', 'hook-curl', 'hook-curl-json']) $(id).value = '';
      form.reset();
      // An archived room keeps its webhooks (to delete) but takes no new one.
      form.elements.name.closest('label').hidden = !!room.archived;
      form.querySelector('button[type="submit"]').hidden = !!room.archived;
      dialog.showModal();
      form.elements.name.focus();
      load();
    });
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const btn = form.querySelector('button[type="submit"]');
      btn.disabled = true;
      error.hidden = true;
      try {
        const h = await api('POST', base(), { name: form.elements.name.value });
        $('hooks-new-name').textContent = h.name;
        $('hook-url').value = h.url;
        $('hook-curl').value = h.curl;
        $('hook-curl-json').value = h.curl_json;
        made.hidden = false;
        form.reset();
        hookList.append(row(h));
        status.textContent = '';
        $('hook-url').focus();
        $('hook-url').select();
      } catch (err) {
        fail(err);
        form.elements.name.focus();
      } finally {
        btn.disabled = false;
      }
    });
    $('hooks-close').addEventListener('click', () => dialog.close());
    dialog.addEventListener('click', (ev) => { if (ev.target === dialog) dialog.close(); });
    // Escape closes it (the browser's); the URL leaves the page with it,
    // and focus goes back to the menu it came from.
    dialog.addEventListener('close', () => {
      seq++;
      made.hidden = true;
      for (const id of ['hook-url', 'hook-curl', 'hook-curl-json']) $(id).value = '';
      hookList.replaceChildren();
      roomMenu.querySelector('summary').focus();
    });

    // Copy puts a value on the clipboard; where the page is not a secure
    // context (plain http to a Pi), it is selected for Ctrl+C (as admin.js).
    made.addEventListener('click', async (ev) => {
      const btn = ev.target.closest('button[data-copy]');
      const input = btn && $(btn.dataset.copy);
      if (!input) return;
      input.focus();
      input.select();
      let copied = false;
      try {
        if (navigator.clipboard && window.isSecureContext) {
          await navigator.clipboard.writeText(input.value);
          copied = true;
        } else {
          copied = document.execCommand('copy');
        }
      } catch { /* the value stays selected */ }
      btn.textContent = copied ? 'Copied' : 'Press Ctrl+C';
      setTimeout(() => { btn.textContent = 'Copy'; }, 3000);
    });
  }

  // ---------- search ----------

  // The search dialog (pages of a NoChat with sign-in): GET /search as the
  // person types, each result opening its message in its room.
  const searchDialog = $('search-dialog');
  if (searchDialog) {
    const searchInput = $('search-q');
    const searchResults = $('search-results');
    const searchStatus = $('search-status');
    let searchTimer = 0;
    let searchSeq = 0;
    const openSearch = () => {
      closeDrawer();
      if (!searchDialog.open) searchDialog.showModal();
      searchInput.focus();
      searchInput.select();
    };
    $('search-open').addEventListener('click', openSearch);
    $('search-close').addEventListener('click', () => searchDialog.close());
    searchDialog.addEventListener('click', (ev) => { if (ev.target === searchDialog) searchDialog.close(); });
    $('search-form').addEventListener('submit', (ev) => { ev.preventDefault(); clearTimeout(searchTimer); runSearch(false); });
    searchInput.addEventListener('input', () => { clearTimeout(searchTimer); searchTimer = setTimeout(() => runSearch(false), 300); });
    // "/" opens search from anywhere but a field.
    document.addEventListener('keydown', (ev) => {
      if (ev.key !== '/' || ev.altKey || ev.ctrlKey || ev.metaKey || document.querySelector('dialog[open]')) return;
      if (ev.target.closest && ev.target.closest('input, textarea, select, [contenteditable]')) return;
      ev.preventDefault();
      openSearch();
    });

    const buildHit = (m) => {
      const li = document.createElement('li');
      const a = document.createElement('a');
      a.className = 'search-hit';
      a.href = m.url;
      a.dataset.slug = m.slug;
      a.dataset.id = String(m.id);
      const head = document.createElement('span');
      head.className = 'hit-head';
      const who = document.createElement('span');
      who.className = 'user ' + colorFor(m.user, m.user_id);
      who.textContent = m.user;
      const where = document.createElement('span');
      where.className = 'hit-room';
      where.textContent = knownRooms.get(m.room)?.title || roomLink(m.room)?.querySelector('.room-link-name')?.textContent || m.slug;
      const when = document.createElement('time');
      const date = new Date(m.timestamp);
      when.dateTime = date.toISOString();
      // Short, so that the room's name keeps its room on a phone; the
      // whole date on hover.
      when.textContent = hitFmt.format(date);
      when.title = fullFmt.format(date);
      head.append(who, where, when);
      // The snippet is the server's: the text escaped, the words found
      // in <mark> and nothing else (db.markSnippet).
      const text = document.createElement('span');
      text.className = 'hit-text';
      text.innerHTML = m.snippet;
      a.append(head, text);
      li.append(a);
      return li;
    };

    // Results come a page at a time, newest first; a full page may have
    // older ones after it, which "Show older results" asks for (before=
    // the last one's id).
    const SEARCH_PAGE = 20;
    const searchMore = $('search-more');
    let searchOlder = 0; // the id older results are before; 0: none
    async function runSearch(more) {
      const q = searchInput.value.trim();
      const seq = ++searchSeq;
      if (!more) searchOlder = 0;
      searchMore.hidden = true;
      if (!q) { searchResults.replaceChildren(); searchStatus.textContent = ''; return; }
      searchStatus.textContent = more ? 'Loading older results…' : 'Searching…';
      try {
        const before = more ? `&before=${searchOlder}` : '';
        // One more than a page, to know whether there are older ones.
        const res = await fetch(`/search?q=${encodeURIComponent(q)}&limit=${SEARCH_PAGE + 1}${before}`, { headers: { Accept: 'application/json' }, cache: 'no-store' });
        let data = null;
        try { data = await res.json(); } catch { /* not JSON */ }
        if (seq !== searchSeq) return; // a newer search is on its way
        if (!res.ok || !Array.isArray(data)) {
          if (!more) searchResults.replaceChildren();
          searchStatus.textContent = errorText('search', data?.error || `HTTP ${res.status}`);
          searchMore.hidden = !more; // an older page may be tried again
          return;
        }
        const full = data.length > SEARCH_PAGE;
        const hits = data.slice(0, SEARCH_PAGE).filter((m) => Number.isSafeInteger(m.id) && typeof m.slug === 'string' && typeof m.snippet === 'string');
        const shown = more ? searchResults.children.length : 0;
        if (more) searchResults.append(...hits.map(buildHit));
        else searchResults.replaceChildren(...hits.map(buildHit));
        // The button pressed may go: the keyboard goes on at the first
        // result it brought.
        if (more) searchResults.children[shown]?.querySelector('a')?.focus();
        const n = searchResults.children.length;
        searchOlder = full && hits.length ? hits[hits.length - 1].id : 0;
        searchMore.hidden = !searchOlder;
        searchStatus.textContent = n === 0 ? 'No messages found.'
          : full ? `The ${n} newest messages; there are older ones`
          : n === 1 ? '1 message' : `${n} messages, newest first`;
      } catch (err) {
        if (seq === searchSeq) {
          searchStatus.textContent = 'Could not search: ' + err.message;
          searchMore.hidden = !more;
        }
      }
    }
    searchMore.addEventListener('click', () => { if (searchOlder) runSearch(true); });

    searchResults.addEventListener('click', (ev) => {
      const a = ev.target.closest('a.search-hit');
      if (!a || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.button !== 0) return;
      ev.preventDefault();
      searchDialog.close();
      switchRoom(a.dataset.slug, true, Number(a.dataset.id));
    });
  }

  // ---------- the list with the keyboard: one stop, arrows between messages ----------

  // Tab reaches the list of messages once, at the message last visited
  // (else the newest on screen); ↑ and ↓ go from message to message; Tab
  // goes into one message's links and actions, and past the last of them
  // leaves the list. A room of 300 messages is not 1,500 stops of Tab.
  let visited = null; // the message the keyboard was last at
  function visit(li) {
    if (!li) return;
    li.tabIndex = -1;
    li.focus({ preventScroll: true });
    if (!li.classList.contains('focus')) li.scrollIntoView({ block: 'nearest' }); // a marked one is centred already
    visited = li;
  }
  // entryMsg is where Tab enters the list: the message last visited, if
  // it is still there, else the newest whose top is on screen.
  function entryMsg() {
    if (visited && visited.isConnected && isMsg(visited)) return visited;
    const bottom = scroller.getBoundingClientRect().bottom;
    const msgs = [...list.querySelectorAll('li.msg')].filter(isMsg);
    return msgs.findLast((li) => li.getBoundingClientRect().top < bottom) || msgs[msgs.length - 1];
  }
  // outside is the first place Tab stops at after the list (forward), or
  // the last before it.
  function outside(forward) {
    const all = [...document.querySelectorAll(TABBABLE)].filter((el) => !list.contains(el) && shown(el));
    return forward
      ? all.find((el) => list.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING)
      : all.findLast((el) => list.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_PRECEDING);
  }
  // tabKey is the press of Tab being handled, from the press to the end of
  // its task, in which the browser moves the focus; a handler that moves
  // the focus itself prevents the key's default first.
  let tabKey = null;
  document.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Tab') return;
    tabKey = ev;
    setTimeout(() => { tabKey = null; });
  }, true);
  // Coming in by Tab, from before the list or after it: to one message,
  // not to the first (or last) control of them all.
  list.addEventListener('focusin', (ev) => {
    if (!tabKey || tabKey.defaultPrevented || list.contains(ev.relatedTarget)) return;
    const li = entryMsg();
    if (li && ev.target !== li) visit(li);
  });
  list.addEventListener('keydown', (ev) => {
    const li = ev.target.closest('li.msg');
    if (!li || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    // From the message or one of its links and buttons; not from an edit
    // under way, whose box and buttons keep their arrows.
    const onMsg = ev.target === li || (ev.target.matches('a, button') && !li.classList.contains('editing'));
    if (onMsg && (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') && !ev.shiftKey) {
      ev.preventDefault();
      const next = msgBeside(li, ev.key === 'ArrowDown' ? 'nextElementSibling' : 'previousElementSibling');
      if (next) visit(next);
      else if (ev.key === 'ArrowUp' && !olderBtn.hidden) olderBtn.focus(); // the top: older ones are a press away
      return;
    }
    if (ev.key !== 'Tab') return;
    visited = li;
    const stops = stopsIn(li);
    if (ev.shiftKey && ev.target === li) {
      ev.preventDefault();
      outside(false)?.focus();
    } else if (ev.shiftKey && ev.target === stops[0]) {
      ev.preventDefault();
      visit(li);
    } else if (!ev.shiftKey && ev.target === (stops[stops.length - 1] || li)) {
      ev.preventDefault();
      outside(true)?.focus();
    }
  });

  // ---------- start ----------

  // The socket resumes after the newest message of any room when the page
  // was made (its history was read after that): other rooms' messages
  // before it are in the sidebar's counts already.
  lastId = Number(document.body.dataset.latestId) || 0;
  for (const li of realItems()) {
    lastId = Math.max(lastId, msgIdOf(li));
    const t = li.querySelector('time');
    if (t) setTime(t, new Date(t.dateTime));
  }
  if (!nameInput.readOnly) nameInput.value = getItem(NAME_KEY) || ''; // signed in: the account's
  loadQueue();
  showPending();
  retint();
  regroup();
  updateCounter(); // a draft the browser restored may be long already
  // A permalink's page opens at its message; others at the first unread.
  if (!focusMessage(Number(document.body.dataset.focus) || 0)) openAtUnread(Number(document.body.dataset.lastRead) || 0);
  // Ready to type, where there is a keyboard (on a phone, focus would
  // open the on-screen one over the messages).
  if (!window.matchMedia('(pointer: coarse)').matches && !msgInput.disabled) msgInput.focus({ preventScroll: true });
  connect();
})();
