/* trasloco's status page: polls the HTTP API and keeps one table per job.
 *
 * The token comes from the URL fragment (#token=..., which browsers never send
 * to the server; it is moved to sessionStorage and taken out of the address
 * bar at once) or from the form.  Every request carries it as a Bearer token;
 * a 401 brings the form back.  EventSource cannot send an Authorization
 * header, so the page polls: GET /v1/jobs every 2 s, and GET /v1/jobs/ID for
 * each job that is shown open and still moving (a finished job is fetched
 * again only when its summary changes, e.g. after a retry).
 *
 * Server data (emails, error texts, job names) is attacker-influenced: it
 * reaches the DOM through textContent and setAttribute only, never as HTML.
 *
 * Stable hooks for tests: #state ("loading", "ok", "error: ..."), a
 * [data-job-id] element per job, a tr[data-email][data-status] per account
 * with a td.status cell whose text is the status.
 */
'use strict';

(function () {
	const POLL_MS = 2000;
	const MAX_BACKOFF_MS = 30000;
	const STORE_KEY = 'trasloco.token';
	const ACTIVE_JOB = ['queued', 'running'];
	const FINISHED_ACCOUNT = ['ok', 'partial', 'failed', 'cancelled'];
	const COUNT_KEYS = ['total', 'pending', 'running', 'ok', 'partial', 'failed', 'cancelled'];

	let token = null;
	let timer = null;
	let failures = 0;
	let polling = false;
	/* bumped whenever the token changes: answers to older requests are dropped */
	let generation = 0;
	const views = new Map(); /* job id (string) -> view */
	const nf = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });

	function byId(id) { return document.getElementById(id); }

	function el(tag, cls, text) {
		const e = document.createElement(tag);
		if (cls) e.className = cls;
		if (text !== undefined) e.textContent = text;
		return e;
	}

	/* Writes only on change: no DOM churn, and a screen reader is not told
	 * the same thing every two seconds. */
	function setText(node, text) {
		text = String(text);
		if (node.textContent !== text) node.textContent = text;
	}

	function setAttr(node, name, value) {
		value = String(value);
		if (node.getAttribute(name) !== value) node.setAttribute(name, value);
	}

	function setState(text) { setText(byId('state'), text); }

	/* ---- numbers ------------------------------------------------------- */

	function num(v) { return typeof v === 'number' && isFinite(v) ? v : null; }
	function str(v) { return typeof v === 'string' ? v : (v === null || v === undefined ? '' : String(v)); }

	function fmtInt(v) { v = num(v); return v === null ? '—' : nf.format(Math.round(v)); }

	function fmtBytes(v) {
		v = num(v);
		if (v === null) return '—';
		const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
		let i = 0;
		while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
		return (i === 0 ? String(Math.round(v)) : v.toFixed(v < 10 ? 1 : 0)) + ' ' + units[i];
	}

	function fmtDuration(v) {
		v = num(v);
		if (v === null || v < 0) return '—';
		v = Math.round(v);
		const d = Math.floor(v / 86400), h = Math.floor(v % 86400 / 3600);
		const m = Math.floor(v % 3600 / 60), s = v % 60;
		const two = (x) => (x < 10 ? '0' : '') + x;
		if (d > 0) return d + 'd ' + two(h) + 'h';
		if (h > 0) return h + 'h ' + two(m) + 'm';
		if (m > 0) return m + 'm ' + two(s) + 's';
		return s + 's';
	}

	function fmtTime(iso) {
		const s = str(iso);
		const t = Date.parse(s);
		return isNaN(t) ? s : new Date(t).toLocaleString();
	}

	/* ---- the token ----------------------------------------------------- */

	function storeGet() {
		try { return sessionStorage.getItem(STORE_KEY); } catch (e) { return null; }
	}

	function storeSet(v) {
		try {
			if (v === null) sessionStorage.removeItem(STORE_KEY);
			else sessionStorage.setItem(STORE_KEY, v);
		} catch (e) { /* storage off: the token lives in this page only */ }
	}

	/* Takes "token=..." out of the fragment (other parts stay) and out of the
	 * address bar and the history entry. */
	function tokenFromFragment() {
		const h = location.hash;
		if (!h || h.length < 2) return null;
		let found = null;
		const rest = [];
		for (const part of h.slice(1).split('&')) {
			if (part.slice(0, 6) === 'token=') {
				try { found = decodeURIComponent(part.slice(6)); } catch (e) { found = part.slice(6); }
			} else if (part) {
				rest.push(part);
			}
		}
		if (found === null) return null;
		history.replaceState(history.state, '',
			location.pathname + location.search + (rest.length ? '#' + rest.join('&') : ''));
		return found === '' ? null : found;
	}

	function showLogin(message) {
		const form = byId('login');
		setText(byId('login-msg'), message || '');
		byId('login-msg').hidden = !message;
		form.hidden = false;
		byId('tools').hidden = true;
		byId('token').value = '';
		byId('token').focus();
	}

	function useToken(t) {
		token = t;
		generation++;
		failures = 0;
		storeSet(t);
		byId('login').hidden = true;
		byId('tools').hidden = false;
		setState('loading');
		schedule(0);
	}

	function dropToken(stateText, message) {
		token = null;
		generation++;
		storeSet(null);
		if (timer !== null) { clearTimeout(timer); timer = null; }
		for (const v of views.values()) v.root.remove();
		views.clear();
		byId('nojobs').hidden = true;
		setText(byId('updated'), '');
		setState(stateText);
		showLogin(message);
	}

	/* ---- the API ------------------------------------------------------- */

	class AuthError extends Error {}

	async function errorText(res) {
		try {
			const body = await res.json();
			if (body && typeof body.error === 'string') return body.error;
		} catch (e) { /* not JSON */ }
		return res.statusText || '';
	}

	async function api(path) {
		const res = await fetch(new URL(path, document.baseURI), {
			headers: { 'Authorization': 'Bearer ' + token, 'Accept': 'application/json' },
			cache: 'no-store',
			credentials: 'omit',
			redirect: 'error',
		});
		if (res.status === 401) throw new AuthError(await errorText(res));
		if (!res.ok) {
			const e = new Error('HTTP ' + res.status + ' ' + await errorText(res));
			e.status = res.status;
			throw e;
		}
		return res.json();
	}

	/* ---- polling ------------------------------------------------------- */

	function schedule(ms) {
		if (timer !== null) clearTimeout(timer);
		timer = setTimeout(() => { timer = null; poll(); }, ms);
	}

	async function poll() {
		if (token === null) return;
		if (document.hidden) return; /* visibilitychange starts us again */
		if (polling) return; /* the poll under way schedules the next one */
		polling = true;
		const gen = generation;
		try {
			await refresh(gen);
			if (gen !== generation) return;
			failures = 0;
			setState('ok');
			setText(byId('updated'), 'updated ' + new Date().toLocaleTimeString());
			schedule(POLL_MS);
		} catch (e) {
			if (gen !== generation) return;
			if (e instanceof AuthError) {
				dropToken('error: 401 unauthorized' + (e.message ? ': ' + e.message : ''),
					'The server refused the token (401' + (e.message ? ': ' + e.message : '') +
					'). Enter the API token.');
				return;
			}
			failures++;
			setState('error: ' + (e && e.message ? e.message : String(e)));
			schedule(Math.min(POLL_MS * Math.pow(2, failures - 1), MAX_BACKOFF_MS));
		} finally {
			polling = false;
			/* the token changed meanwhile: its first poll found this one running */
			if (gen !== generation && token !== null && timer === null) schedule(0);
		}
	}

	function jobOrder(a, b) {
		const x = num(a.id), y = num(b.id);
		if (x !== null && y !== null) return y - x; /* newest first */
		return str(b.id).localeCompare(str(a.id));
	}

	async function refresh(gen) {
		const list = await api('v1/jobs');
		if (gen !== generation) return;
		const jobs = (list && Array.isArray(list.jobs) ? list.jobs : [])
			.filter((j) => j && j.id !== undefined && j.id !== null)
			.sort(jobOrder);
		const container = byId('jobs');
		const seen = new Set();
		const wanted = [];
		let prev = null;
		for (const job of jobs) {
			const id = str(job.id);
			if (seen.has(id)) continue;
			seen.add(id);
			let v = views.get(id);
			if (!v) {
				/* open at first sight: jobs still moving, and the newest one */
				v = makeJobView(id, ACTIVE_JOB.includes(job.state) || prev === null);
				views.set(id, v);
			}
			const key = JSON.stringify(job);
			const changed = key !== v.summaryKey;
			v.summaryKey = key;
			/* a closed job's accounts are fetched again when it is opened */
			if (changed && !v.details.open) v.fetched = false;
			updateJob(v, job);
			/* keep the server's order (newest first) without moving nodes needlessly */
			const next = prev ? prev.root.nextSibling : container.firstChild;
			if (next !== v.root) container.insertBefore(v.root, next);
			prev = v;
			if (v.details.open && (!v.fetched || changed || ACTIVE_JOB.includes(job.state))) wanted.push(v);
		}
		for (const [id, v] of views) {
			if (!seen.has(id)) { v.root.remove(); views.delete(id); }
		}
		byId('nojobs').hidden = views.size > 0;
		await Promise.all(wanted.map((v) => fetchDetail(v, gen)));
	}

	async function fetchDetail(v, gen) {
		let job;
		try {
			job = await api('v1/jobs/' + encodeURIComponent(v.id));
		} catch (e) {
			if (e.status === 404) return; /* deleted meanwhile: gone at the next poll */
			throw e;
		}
		if (gen !== generation || !views.has(v.id)) return;
		v.fetched = true;
		updateJob(v, job);
		updateAccounts(v, Array.isArray(job.account_list) ? job.account_list : []);
	}

	/* ---- one job ------------------------------------------------------- */

	function makeJobView(id, open) {
		const root = el('section', 'job');
		root.setAttribute('data-job-id', id);
		const details = el('details');
		details.open = open;
		const summary = el('summary');
		const h = el('h2');
		const title = el('span', 'job-title');
		const state = el('span', 'badge');
		h.append(title, ' ', state);
		const bar = el('progress', 'job-bar');
		const progressText = el('span', 'job-progress');
		const counts = el('span', 'counts');
		summary.append(h, bar, progressText, counts);
		details.append(summary);

		const facts = el('dl', 'facts');
		const fact = {};
		for (const [k, label] of [['src', 'Source'], ['dst', 'Destination'], ['created', 'Created'],
			['messages', 'Messages'], ['bytes', 'Data'], ['rate', 'Rate'], ['elapsed', 'Elapsed'],
			['eta', 'ETA'], ['sessions', 'Sessions']]) {
			const div = el('div');
			const dd = el('dd');
			div.append(el('dt', '', label), dd);
			facts.append(div);
			fact[k] = dd;
		}
		const skipped = el('details', 'skipped');
		skipped.hidden = true;
		const skippedSummary = el('summary');
		const skippedList = el('ul');
		skipped.append(skippedSummary, skippedList);

		const table = el('table', 'accounts');
		const caption = el('caption', 'visually-hidden');
		const thead = el('thead');
		const hr = el('tr');
		for (const [label, cls, hint] of [['Account', 'email', ''], ['Status', '', ''],
			['Folders', 'folders', 'folders done of folders found'],
			['Copied', 'num', 'messages copied'],
			['Present', 'num', 'messages already on the destination'],
			['Failed', 'num', 'messages that could not be copied'],
			['Size', 'num', 'bytes copied'], ['Time', 'num', 'time spent on the account'],
			['Tries', 'num', 'attempts'], ['Error', 'error', '']]) {
			const th = el('th', cls, label);
			th.scope = 'col';
			if (hint) th.title = hint;
			hr.append(th);
		}
		thead.append(hr);
		const tbody = el('tbody');
		table.append(caption, thead, tbody);
		const wrap = el('div', 'table-wrap');
		wrap.append(table);
		const shown = el('p', 'shown');
		const loading = el('p', 'empty', 'loading accounts…');
		details.append(facts, skipped, loading, wrap, shown);
		root.append(details);

		const v = { id, root, details, title, state, bar, progressText, counts, fact, skipped,
			skippedSummary, skippedList, caption, tbody, wrap, shown, loading,
			rows: new Map(), fetched: false, summaryKey: null };
		wrap.hidden = true;
		details.addEventListener('toggle', () => {
			if (details.open && !v.fetched && token !== null) schedule(0);
		});
		return v;
	}

	function updateJob(v, job) {
		const state = str(job.state) || 'unknown';
		setAttr(v.root, 'data-state', state);
		const name = str(job.name);
		setText(v.title, '#' + v.id + (name ? ' ' + name : ''));
		setText(v.state, state);
		setAttr(v.state, 'class', 'badge st-' + state.replace(/[^a-z]/g, ''));
		setText(v.caption, 'Accounts of job #' + v.id + (name ? ' ' + name : ''));

		const a = job.accounts && typeof job.accounts === 'object' ? job.accounts : {};
		const total = num(a.total) || 0;
		let finished = 0;
		for (const k of FINISHED_ACCOUNT) finished += num(a[k]) || 0;
		setAttr(v.bar, 'max', Math.max(total, 1));
		setAttr(v.bar, 'value', total ? Math.min(finished, total) : (ACTIVE_JOB.includes(state) ? 0 : 1));
		setAttr(v.bar, 'aria-label', 'accounts finished: ' + finished + ' of ' + total);
		setText(v.progressText, finished + ' / ' + total + ' accounts');

		/* the counts as small labelled chips; zero ones are dimmed */
		if (v.counts.childElementCount !== COUNT_KEYS.length - 1) {
			v.counts.textContent = '';
			for (const k of COUNT_KEYS.slice(1)) {
				const chip = el('span', 'chip st-' + k);
				chip.append(el('span', 'n'), ' ' + k);
				v.counts.append(chip);
			}
		}
		COUNT_KEYS.slice(1).forEach((k, i) => {
			const chip = v.counts.children[i];
			const n = num(a[k]) || 0;
			setText(chip.firstChild, fmtInt(n));
			chip.classList.toggle('zero', n === 0);
		});

		setText(v.fact.src, str(job.src) || '—');
		setText(v.fact.dst, str(job.dst) || '—');
		setText(v.fact.created, job.created ? fmtTime(job.created) : '—');
		if (job.created) setAttr(v.fact.created, 'title', str(job.created));
		setText(v.fact.messages, fmtInt(job.messages_copied) + ' copied · ' +
			fmtInt(job.messages_present) + ' already there · ' + fmtInt(job.messages_failed) + ' failed');
		setText(v.fact.bytes, fmtBytes(job.bytes));
		if (ACTIVE_JOB.includes(state)) {
			setText(v.fact.rate, num(job.rate) === null ? '—' :
				nf.format(job.rate) + ' msg/s · ' + fmtBytes(job.bytes_per_second) + '/s');
		} else {
			/* a finished job's current rate is 0: its average says more */
			const secs = num(job.seconds);
			setText(v.fact.rate, !secs ? '—' : nf.format((num(job.messages_copied) || 0) / secs) +
				' msg/s · ' + fmtBytes((num(job.bytes) || 0) / secs) + '/s on average');
		}
		setText(v.fact.elapsed, fmtDuration(job.seconds));
		setText(v.fact.eta, ACTIVE_JOB.includes(state) ?
			(num(job.eta_seconds) === null ? 'unknown' : fmtDuration(job.eta_seconds)) : 'finished');
		const s = job.sessions && typeof job.sessions === 'object' ? job.sessions : {};
		const side = (x) => (x && typeof x === 'object' ?
			fmtInt(x.in_use) + ' of ' + fmtInt(x.cap) + ' (' + fmtInt(x.per_account) + ' per account)' : '—');
		setText(v.fact.sessions, 'source ' + side(s.src) + ' · destination ' + side(s.dst));

		const sk = Array.isArray(job.skipped) ? job.skipped : [];
		v.skipped.hidden = sk.length === 0;
		setText(v.skippedSummary, sk.length + ' CSV row' + (sk.length === 1 ? '' : 's') + ' skipped');
		const skKey = JSON.stringify(sk);
		if (v.skippedList.dataset.key !== skKey) {
			v.skippedList.dataset.key = skKey;
			v.skippedList.textContent = '';
			for (const r of sk) {
				v.skippedList.append(el('li', '', 'line ' + fmtInt(r && r.line) + ': ' + str(r && r.reason)));
			}
		}
	}

	/* ---- its accounts -------------------------------------------------- */

	const CELLS = ['email', 'status', 'folders', 'copied', 'present', 'failed', 'bytes', 'time',
		'attempts', 'error'];

	function makeRow() {
		const tr = el('tr');
		const c = {};
		for (const k of CELLS) {
			const cell = el(k === 'email' ? 'th' : 'td', k);
			if (k === 'email') cell.scope = 'row';
			if (['copied', 'present', 'failed', 'bytes', 'time', 'attempts'].includes(k)) cell.classList.add('num');
			tr.append(cell);
			c[k] = cell;
		}
		c.bar = el('progress');
		c.folderText = el('span', 'ft');
		c.folders.append(c.bar, c.folderText);
		return { tr, c, search: '', status: '', memo: null };
	}

	function updateRow(r, acc) {
		const email = str(acc.email);
		const status = str(acc.status) || 'unknown';
		const error = str(acc.error);
		const c = r.c;
		setAttr(r.tr, 'data-email', email);
		setAttr(r.tr, 'data-status', status);
		setAttr(r.tr, 'class', 'st-' + status.replace(/[^a-z]/g, ''));
		setText(c.email, email);
		setText(c.status, status);
		const worker = str(acc.worker);
		if (worker) setAttr(c.status, 'title', 'worker ' + worker);
		else if (c.status.hasAttribute('title')) c.status.removeAttribute('title');

		const done = num(acc.folders_done), total = num(acc.folders_total);
		if (total !== null && total > 0) {
			setAttr(c.bar, 'max', total);
			setAttr(c.bar, 'value', Math.min(done || 0, total));
			setText(c.folderText, fmtInt(done || 0) + '/' + fmtInt(total));
		} else {
			setAttr(c.bar, 'max', 1);
			if (status === 'running') {
				if (c.bar.hasAttribute('value')) c.bar.removeAttribute('value'); /* indeterminate */
			} else {
				/* an account that ended with no folder to copy is full only when ok */
				setAttr(c.bar, 'value', status === 'ok' ? 1 : 0);
			}
			setText(c.folderText, total === 0 && status === 'ok' ? '0/0' : '—');
		}
		setAttr(c.bar, 'aria-label', 'folders of ' + email + ': ' + fmtInt(done || 0) +
			' of ' + (total === null ? 'unknown' : fmtInt(total)));

		setText(c.copied, fmtInt(acc.messages_copied));
		setText(c.present, fmtInt(acc.messages_present));
		setText(c.failed, fmtInt(acc.messages_failed));
		c.failed.classList.toggle('bad', (num(acc.messages_failed) || 0) > 0);
		setText(c.bytes, fmtBytes(acc.bytes));
		setText(c.time, status === 'pending' && !num(acc.seconds) ? '—' : fmtDuration(acc.seconds));
		setText(c.attempts, fmtInt(acc.attempts));
		setText(c.error, error);
		if (error) setAttr(c.error, 'title', error);
		else if (c.error.hasAttribute('title')) c.error.removeAttribute('title');
		r.status = status;
		r.search = (email + '\n' + error).toLowerCase();
	}

	function updateAccounts(v, list) {
		const seen = new Map(); /* email -> times seen: a repeated email gets its own row */
		const keep = new Set();
		let prev = null;
		for (const acc of list) {
			if (!acc || typeof acc !== 'object') continue;
			const email = str(acc.email);
			const n = seen.get(email) || 0;
			seen.set(email, n + 1);
			const key = email + '\n' + n;
			keep.add(key);
			let r = v.rows.get(key);
			if (!r) { r = makeRow(); v.rows.set(key, r); }
			/* most of hundreds of rows do not change in 2 s: leave them alone */
			const memo = JSON.stringify(acc);
			if (r.memo !== memo) { updateRow(r, acc); r.memo = memo; }
			const next = prev ? prev.tr.nextSibling : v.tbody.firstChild;
			if (next !== r.tr) v.tbody.insertBefore(r.tr, next);
			prev = r;
		}
		for (const [key, r] of v.rows) {
			if (!keep.has(key)) { r.tr.remove(); v.rows.delete(key); }
		}
		v.loading.hidden = true;
		v.wrap.hidden = false;
		applyFilter(v);
	}

	/* ---- the filter ---------------------------------------------------- */

	function matches(r, text, show) {
		if (text && !r.search.includes(text)) return false;
		if (show === 'all') return true;
		if (show === 'problems') return r.status === 'failed' || r.status === 'partial';
		return r.status === show;
	}

	function applyFilter(v) {
		const text = byId('filter').value.trim().toLowerCase();
		const show = byId('show').value;
		let n = 0;
		for (const r of v.rows.values()) {
			const ok = matches(r, text, show);
			if (r.tr.hidden === ok) r.tr.hidden = !ok;
			if (ok) n++;
		}
		setText(v.shown, v.rows.size === 0 ? 'no accounts' :
			(n === v.rows.size ? v.rows.size + ' accounts' : n + ' of ' + v.rows.size + ' accounts shown'));
	}

	function applyFilterAll() { for (const v of views.values()) if (v.fetched) applyFilter(v); }

	/* The filter lives in the fragment too (#show=problems&q=acme), so that a
	 * view can be bookmarked or linked; the token is never written there. */
	function filterFromFragment() {
		for (const part of location.hash.slice(1).split('&')) {
			const i = part.indexOf('=');
			if (i <= 0) continue;
			let value;
			try { value = decodeURIComponent(part.slice(i + 1)); } catch (e) { continue; }
			const key = part.slice(0, i);
			const show = byId('show');
			if (key === 'show' && Array.from(show.options).some((o) => o.value === value)) show.value = value;
			else if (key === 'q') byId('filter').value = value;
		}
	}

	function filterToFragment() {
		const parts = [];
		const show = byId('show').value, q = byId('filter').value;
		if (show !== 'all') parts.push('show=' + encodeURIComponent(show));
		if (q) parts.push('q=' + encodeURIComponent(q));
		history.replaceState(history.state, '',
			location.pathname + location.search + (parts.length ? '#' + parts.join('&') : ''));
	}

	function filterChanged() {
		applyFilterAll();
		filterToFragment();
	}

	/* ---- start --------------------------------------------------------- */

	function start() {
		byId('login').addEventListener('submit', (ev) => {
			ev.preventDefault();
			const t = byId('token').value.trim();
			byId('token').value = '';
			if (t) useToken(t);
		});
		byId('forget').addEventListener('click', () => dropToken('error: no token', ''));
		byId('filter').addEventListener('input', filterChanged);
		byId('show').addEventListener('change', filterChanged);
		document.addEventListener('visibilitychange', () => {
			if (!document.hidden && token !== null && timer === null) schedule(0);
		});
		window.addEventListener('hashchange', () => {
			const t = tokenFromFragment();
			filterFromFragment();
			applyFilterAll();
			if (t !== null) useToken(t);
		});

		filterFromFragment();
		const t = tokenFromFragment() || storeGet();
		if (t) useToken(t);
		else dropToken('error: no token', '');
	}

	if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
	else start();
})();
