// NoChat admin dashboard: holds the live part still while the admin works in
// it, and asks before an action. Loaded after htmx; the page's policy allows
// no inline script, so this is the dashboard's only script besides htmx.
(() => {
  'use strict';

  const dialog = document.getElementById('confirm');
  const titleEl = document.getElementById('confirm-title');
  const detailEl = document.getElementById('confirm-detail');
  const okBtn = document.getElementById('confirm-ok');
  const stateEl = document.getElementById('live-state');
  if (!dialog || !stateEl) return;

  const live = () => document.getElementById('live');
  let held = 0; // refreshes held back since the last one shown

  // why says what holds the live part still, or '' when nothing does. A
  // refresh replaces the rows: under the pointer it would move the row being
  // aimed at, and it would drop keyboard focus and any text selection. Mouse
  // clicks leave focus on a button without :focus-visible; that alone does
  // not hold the page.
  function why() {
    const el = live();
    if (!el) return '';
    if (dialog.open) return 'while you confirm';
    const sel = document.getSelection();
    if (sel && !sel.isCollapsed && (el.contains(sel.anchorNode) || el.contains(sel.focusNode))) {
      return 'while text is selected';
    }
    const f = document.activeElement;
    if (f && el.contains(f) && f.matches(':focus-visible')) return 'while a control has keyboard focus';
    if (el.querySelector('tbody:hover, .pager:hover, .filter:hover')) return 'while the pointer is on a list';
    return '';
  }

  let problem = ''; // an action's refusal, shown for a few seconds
  let problemTimer = 0;

  function showState(reason) {
    const text = problem || (reason ? `Live updates paused ${reason}` : '');
    if (stateEl.textContent !== text) stateEl.textContent = text;
    stateEl.hidden = text === '';
  }

  // Only the live part's own refresh is held; actions go through.
  function isRefresh(ev) {
    const d = ev.detail;
    return d && d.elt && d.elt.id === 'live' && d.requestConfig && d.requestConfig.verb === 'get';
  }

  function hold() {
    held++;
    const el = live();
    if (el) el.dataset.held = String(held);
  }

  // An action (a deletion, a disconnect) answers with the live part as it
  // left it. A refresh asked for before the action's answer came shows the
  // page as it was before: swapped in after it, it would bring back a
  // deleted row, or leave a filtered list's panel empty. So no refresh is
  // asked for while an action is under way, and one asked for before the
  // last action began is dropped.
  let acting = 0; // actions under way
  let actedAt = -1; // when the last action began (performance.now())

  document.body.addEventListener('htmx:beforeRequest', (ev) => {
    if (!isRefresh(ev)) {
      acting++;
      actedAt = performance.now();
      return;
    }
    const reason = why();
    showState(reason);
    // (An action's answer that never came stops holding after 30 s.)
    const waiting = acting > 0 && performance.now() - actedAt < 30000;
    if (reason || waiting) { ev.preventDefault(); hold(); return; }
    if (ev.detail.xhr) ev.detail.xhr.nochatAskedAt = performance.now();
  });
  document.body.addEventListener('htmx:afterRequest', (ev) => {
    if (!isRefresh(ev) && acting > 0) acting--;
  });
  // A refresh already under way when the admin started working, or asked
  // for before the last action, is dropped.
  document.body.addEventListener('htmx:beforeSwap', (ev) => {
    if (!isRefresh(ev)) return;
    const stale = (ev.detail.xhr && ev.detail.xhr.nochatAskedAt || 0) < actedAt;
    if (stale || why()) { ev.detail.shouldSwap = false; hold(); }
  });

  // An action refused (the message was deleted meanwhile, the session left)
  // answers {"error": ...} and htmx swaps nothing, so say it here for a while.
  document.body.addEventListener('htmx:responseError', (ev) => {
    if (isRefresh(ev)) return;
    let said = '';
    try { said = JSON.parse(ev.detail.xhr.responseText).error || ''; } catch { /* not JSON */ }
    problem = said ? said.charAt(0).toUpperCase() + said.slice(1) : `That did not work (HTTP ${ev.detail.xhr.status}).`;
    // A new bot's or webhook's form says it by its button too, where the
    // admin is looking, until the form is sent again.
    const form = ev.detail.elt && ev.detail.elt.closest && ev.detail.elt.closest('form');
    const button = form && form.querySelector('.new-form button[type="submit"]');
    if (button) {
      let p = form.querySelector('.problem');
      if (!p) {
        p = document.createElement('p');
        p.className = 'problem';
        p.setAttribute('role', 'alert');
        button.before(p);
      }
      p.textContent = problem;
    }
    showState(why());
    clearTimeout(problemTimer);
    problemTimer = setTimeout(() => { problem = ''; showState(why()); }, 6000);
  });

  // ---------- asking before an action ----------

  let restore = null; // where keyboard focus goes once an action's answer is in

  // placeOf remembers an action's place by position, so that focus can go
  // to the row that took the acted-on row's place, or to its section.
  function placeOf(elt) {
    const row = elt.closest('tr');
    const table = elt.closest('table');
    const heading = elt.closest('section')?.querySelector('h2');
    return {
      table: table ? table.id : '',
      index: row ? Array.prototype.indexOf.call(row.parentElement.children, row) : 0,
      heading: heading ? heading.id : '',
    };
  }

  document.body.addEventListener('htmx:confirm', (ev) => {
    const question = ev.detail.question;
    if (!question) return;
    ev.preventDefault();
    const elt = ev.detail.elt;
    const keyboard = document.activeElement && document.activeElement.matches(':focus-visible');
    titleEl.textContent = question;
    detailEl.textContent = elt.dataset.confirmDetail || '';
    detailEl.hidden = detailEl.textContent === '';
    okBtn.textContent = elt.dataset.confirmOk || 'OK';
    dialog.returnValue = '';
    dialog.onclose = () => {
      dialog.onclose = null;
      if (dialog.returnValue !== 'ok') return; // focus goes back to the button
      restore = keyboard ? placeOf(elt) : null;
      ev.detail.issueRequest(true);
    };
    dialog.showModal();
  });

  // ---------- the list of people ----------

  // A people action swaps in a new list: keyboard focus goes to the reset
  // link it shows, or back to the list's heading, never lost on the body.
  document.body.addEventListener('htmx:afterSettle', (ev) => {
    if (ev.target.id !== 'people') return;
    const link = document.getElementById('reset-link');
    const target = link || document.getElementById('people-title');
    if (target) target.focus({ focusVisible: true, preventScroll: !!link });
    if (link) {
      // The whole box in sight, its heading and what the link does too,
      // not the field alone at the screen's top edge.
      link.closest('.reset-box')?.scrollIntoView({ block: 'nearest' });
      link.select();
    }
  });

  // One Manage menu open at a time; Escape or a click elsewhere closes it,
  // and Escape gives focus back to its button.
  const openMenus = () => document.querySelectorAll('details.manage[open]');
  document.body.addEventListener('toggle', (ev) => {
    const d = ev.target;
    if (!d.matches || !d.matches('details.manage') || !d.open) return;
    for (const other of openMenus()) if (other !== d) other.open = false;
  }, true);
  document.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Escape' || dialog.open) return;
    for (const d of openMenus()) {
      const inside = d.contains(document.activeElement);
      d.open = false;
      if (inside) d.querySelector('summary').focus();
    }
  });
  document.addEventListener('click', (ev) => {
    if (dialog.open) return;
    for (const d of openMenus()) if (!d.contains(ev.target)) d.open = false;
  });

  // Copy puts the reset link on the clipboard; where the page is not a
  // secure context (plain http to a Pi), the link is selected for Ctrl+C.
  document.body.addEventListener('click', async (ev) => {
    const btn = ev.target.closest('button[data-copy]');
    if (!btn) return;
    const input = document.getElementById(btn.dataset.copy);
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
    } catch { /* fall through: the link stays selected */ }
    btn.textContent = copied ? 'Copied' : 'Press Ctrl+C';
    setTimeout(() => { btn.textContent = 'Copy'; }, 3000);
  });

  // The list of people is not refreshed (it is read when the page loads
  // or an admin acts on it), but who is online is in every live refresh:
  // each person's Online and Last seen cells follow it, changing only text.
  // A Last seen ages as the page stays open: its data-age (milliseconds,
  // as the list was read) plus the time since the cell was first seen
  // here (this browser's clock only, whatever the server's says).
  function agoText(ms) {
    const s = Math.round(ms / 1000);
    if (s <= 1) return 'now';
    const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60, sec = s % 60;
    return (d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : m ? `${m}m ${sec}s` : `${sec}s`) + ' ago'; // as views.duration
  }
  function followOnline() {
    const open = new Map();
    for (const who of document.querySelectorAll('#connections tr.who[data-user-id]')) {
      const id = who.dataset.userId;
      if (id !== '0') open.set(id, who.parentElement.querySelectorAll('tr[data-session]').length);
    }
    for (const row of document.querySelectorAll('#people-list tr[data-id]')) {
      const n = open.get(row.dataset.id) || 0;
      const count = row.querySelector('.online .n');
      const seen = row.querySelector('.seen');
      if (count && count.textContent !== String(n)) count.textContent = String(n);
      if (!seen) continue;
      if (n > 0) {
        if (seen.textContent !== 'online now') seen.textContent = 'online now';
        delete seen.dataset.age;
        continue;
      }
      if (seen.textContent === 'online now') { // gone a moment ago
        seen.dataset.age = '0';
        delete seen.dataset.since;
      }
      if (seen.dataset.age === undefined) continue; // never seen
      seen.dataset.since ||= String(performance.now() - Number(seen.dataset.age));
      const text = agoText(performance.now() - Number(seen.dataset.since));
      if (seen.textContent !== text) seen.textContent = text;
    }
  }

  document.body.addEventListener('htmx:afterSettle', (ev) => {
    if (ev.target.id !== 'live') return;
    followOnline();
  });

  // A room's member list stays open across refreshes: a refresh brings it
  // closed, and it is opened again before it is drawn.
  const openLists = new Set();
  document.body.addEventListener('toggle', (ev) => {
    const d = ev.target;
    if (!d.matches || !d.matches('details.member-list') || !d.id) return;
    if (d.open) openLists.add(d.id); else openLists.delete(d.id);
  }, true);
  document.body.addEventListener('htmx:afterSwap', () => {
    for (const id of openLists) {
      const d = document.getElementById(id);
      if (d && !d.open) d.open = true;
    }
  });

  document.body.addEventListener('htmx:afterSettle', (ev) => {
    if (ev.target.id !== 'live') return; // the new live part, whoever asked
    held = 0;
    showState(why());
    if (!restore) return;
    const place = restore;
    restore = null;
    const rows = place.table ? document.querySelectorAll(`#${place.table} tbody tr`) : [];
    const row = rows[Math.min(place.index, rows.length - 1)];
    const target = row?.querySelector('button') || (place.heading && document.getElementById(place.heading));
    if (target) target.focus({ focusVisible: true });
  });
})();
