/*
 * The carbonpay operator and auditor console (#12): Vue 3 and Chart.js from their browser builds, no bundler.
 * It talks to the JSON API only, with the operator's Bearer session held in memory (a reload logs out). It shows what
 * the role may do (GET /v1/console/profile); the API decides and enforces every rule, masking included.
 */
'use strict';

(function () {
  const { createApp, nextTick } = Vue;

  const SCREEN_TITLES = {
    dashboard: 'Dashboard',
    accounts: 'Accounts',
    merchants: 'Merchant review',
    clearing: 'Clearing',
    audit: 'Audit trail',
    keys: 'Keys',
  };
  const DAY_MS = 86400000;
  /** Business dates are China Standard Time dates (cut-off 00:00), whatever the browser's zone. */
  const CST_OFFSET_MS = 8 * 3600000;
  const DASHBOARD_DAYS = 14;

  /** Chart instances stay outside Vue's reactivity (Chart.js must not be proxied). */
  const charts = { payments: undefined, carbon: undefined };

  class ApiFailure extends Error {
    constructor(status, body) {
      super(body && body.message ? body.message : 'HTTP ' + status);
      this.status = status;
      this.code = body && body.code;
      this.details = (body && body.details) || {};
    }
  }

  function businessDateOf(instant) {
    return new Date(Date.parse(instant) + CST_OFFSET_MS).toISOString().slice(0, 10);
  }

  function addDays(date, days) {
    return new Date(Date.parse(date + 'T00:00:00Z') + days * DAY_MS).toISOString().slice(0, 10);
  }

  function idempotencyKey() {
    return 'console-' + crypto.randomUUID();
  }

  function loginMessage(failure) {
    switch (failure.code) {
      case 'account_locked': {
        const minutes = Math.ceil(Number(failure.details.retryAfterSeconds || 0) / 60);
        return 'Account locked after too many failed logins. Try again in ' + minutes + ' minutes.';
      }
      case 'totp_required':
        return 'Administrators also give the 6-digit code of their authenticator app.';
      case 'invalid_credentials':
        return 'Unknown user or wrong password.';
      case 'password_expired':
        return 'Your password has expired: change it before logging in (carbonpay operators passwd).';
      default:
        return failure.message;
    }
  }

  function drawChart(slot, canvasId, type, label, labels, values, colour) {
    if (charts[slot]) charts[slot].destroy();
    const canvas = document.getElementById(canvasId);
    if (!canvas) return;
    charts[slot] = new Chart(canvas, {
      type: type,
      data: {
        labels: labels,
        datasets: [{ label: label, data: values, backgroundColor: colour, borderColor: colour, fill: false }],
      },
      options: { animation: false, responsive: true, maintainAspectRatio: false, scales: { y: { beginAtZero: true } } },
    });
  }

  const app = createApp({
    data() {
      return {
        busy: false,
        session: null,
        profile: { screens: [], operations: [], role: null, mayUnmask: false, serverTime: '' },
        current: null,
        message: '',
        error: '',
        loginError: '',
        loginForm: { username: '', password: '', totp: '', needsTotp: false },
        screenTitles: SCREEN_TITLES,
        dashboard: { from: '', to: '', days: [] },
        accounts: { q: '', results: [], detail: null, statement: [] },
        merchants: { status: 'applied', list: [], reasons: {} },
        clearing: { date: '', all: false, day: null, cases: [], forms: {} },
        audit: { actor: '', action: '', entries: [], nextBeforeSeq: null, ledger: [] },
        keys: { dataKeys: [], clients: [], platformSigningKey: false },
      };
    },
    methods: {
      may(operationId) {
        return this.profile.operations.includes(operationId);
      },

      /** One JSON call; a session the server no longer knows sends the operator back to the login screen. */
      async call(method, path, body, withKey) {
        const headers = { accept: 'application/json' };
        if (this.session) headers.authorization = 'Bearer ' + this.session.token;
        if (body !== undefined) headers['content-type'] = 'application/json';
        if (withKey) headers['idempotency-key'] = idempotencyKey();
        const response = await fetch(path, {
          method: method,
          headers: headers,
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        const text = await response.text();
        const parsed = text === '' ? {} : JSON.parse(text);
        if (!response.ok) {
          const failure = new ApiFailure(response.status, parsed);
          if (this.session && (failure.code === 'session_expired' || failure.code === 'unauthorized')) {
            this.session = null;
            this.loginError = 'Your session ended; log in again.';
          }
          throw failure;
        }
        return parsed;
      },

      /** Runs a screen's action, showing the API's refusal (code and message) instead of failing silently. */
      async attempt(work) {
        this.error = '';
        this.busy = true;
        try {
          return await work();
        } catch (failure) {
          if (failure instanceof ApiFailure) {
            this.error =
              failure.code === 'forbidden'
                ? 'Your role may not do this (' + failure.message + ').'
                : failure.code + ': ' + failure.message;
            return undefined;
          }
          throw failure;
        } finally {
          this.busy = false;
        }
      },

      async login() {
        this.loginError = '';
        this.busy = true;
        try {
          const form = this.loginForm;
          const body = { username: form.username, password: form.password };
          if (form.needsTotp && form.totp !== '') body.totp = form.totp;
          const session = await this.call('POST', '/v1/auth/login', body);
          this.session = { token: session.token, username: form.username, role: session.role };
          this.loginForm = { username: '', password: '', totp: '', needsTotp: false };
          this.profile = await this.call('GET', '/v1/console/profile');
          const today = businessDateOf(this.profile.serverTime);
          this.dashboard.to = today;
          this.dashboard.from = addDays(today, 1 - DASHBOARD_DAYS);
          this.clearing.date = today;
          if (this.profile.screens.length) await this.open(this.profile.screens[0]);
        } catch (failure) {
          if (!(failure instanceof ApiFailure)) throw failure;
          if (failure.code === 'totp_required') this.loginForm.needsTotp = true;
          this.loginError = loginMessage(failure);
        } finally {
          this.busy = false;
        }
      },

      async logout() {
        await this.attempt(() => this.call('POST', '/v1/auth/logout', {}));
        this.session = null;
        this.current = null;
        this.message = '';
        this.error = '';
      },

      async open(screen) {
        this.current = screen;
        this.message = '';
        this.error = '';
        if (screen === 'dashboard') await this.loadDashboard();
        if (screen === 'merchants') await this.loadMerchants();
        if (screen === 'clearing') await this.loadClearing();
        if (screen === 'audit') await this.loadAudit(true);
        if (screen === 'keys') await this.loadKeys();
      },

      async loadDashboard() {
        const query = '?from=' + this.dashboard.from + '&to=' + this.dashboard.to;
        const series = await this.attempt(() => this.call('GET', '/v1/console/dashboard' + query));
        if (!series) return;
        this.dashboard.days = series.days;
        await nextTick();
        const labels = series.days.map((d) => d.date);
        drawChart(
          'payments',
          'payments-chart',
          'bar',
          'Captured payments (CNY)',
          labels,
          series.days.map((d) => Number(d.paymentAmount)),
          '#2f6f4e',
        );
        drawChart(
          'carbon',
          'carbon-chart',
          'line',
          'Carbon reduction (g CO2e)',
          labels,
          series.days.map((d) => Number(d.carbonGrams)),
          '#3a7bd5',
        );
      },

      async searchAccounts() {
        const found = await this.attempt(() =>
          this.call('GET', '/v1/console/accounts?q=' + encodeURIComponent(this.accounts.q)),
        );
        if (!found) return;
        this.accounts.results = found.accounts;
        this.accounts.detail = null;
        this.accounts.statement = [];
        if (!found.accounts.length) this.message = 'No account matches ' + this.accounts.q + '.';
      },

      async openAccount(accountId) {
        const id = encodeURIComponent(accountId);
        const detail = await this.attempt(() => this.call('GET', '/v1/accounts/' + id));
        if (!detail) return;
        this.accounts.detail = detail;
        const statement = await this.attempt(() => this.call('GET', '/v1/accounts/' + id + '/statement?limit=100'));
        this.accounts.statement = statement ? statement.lines : [];
      },

      async loadMerchants() {
        const found = await this.attempt(() =>
          this.call('GET', '/v1/console/merchants?status=' + this.merchants.status),
        );
        if (found) this.merchants.list = found.merchants;
      },

      async review(merchant, decision) {
        const reason = (this.merchants.reasons[merchant.merchantId] || '').trim();
        if (reason === '') {
          this.error = 'A review needs a reason.';
          return;
        }
        const reviewed = await this.attempt(() =>
          this.call(
            'POST',
            '/v1/merchants/' + encodeURIComponent(merchant.merchantId) + '/review',
            { decision: decision, reason: reason },
            true,
          ),
        );
        if (!reviewed) return;
        this.message = 'Merchant ' + reviewed.merchantId + ' (' + reviewed.name + ') is now ' + reviewed.status + '.';
        await this.loadMerchants();
      },

      async loadClearing() {
        const date = this.clearing.date;
        if (this.may('getClearingDay')) {
          const day = await this.attempt(() => this.call('GET', '/v1/console/clearing/days/' + date));
          if (day) this.clearing.day = day;
        }
        const state = this.clearing.all ? 'all' : 'unresolved';
        const found = await this.attempt(() =>
          this.call('GET', '/v1/console/clearing/cases?billDate=' + date + '&state=' + state),
        );
        if (!found) return;
        const forms = {};
        for (const c of found.cases) {
          forms[c.caseId] = { resolution: c.allowedResolutions[0] || '', businessDate: date, note: '' };
        }
        this.clearing.forms = forms;
        this.clearing.cases = found.cases;
      },

      async resolveCase(c) {
        const form = this.clearing.forms[c.caseId];
        const body = { resolution: form.resolution, businessDate: form.businessDate };
        if (form.note.trim() !== '') body.note = form.note.trim();
        const resolved = await this.attempt(() =>
          this.call('POST', '/v1/console/clearing/cases/' + c.caseId + '/resolve', body, true),
        );
        if (!resolved) return;
        this.message = 'Case ' + resolved.caseId + ' is ' + resolved.state + ' (' + form.resolution + ').';
        this.clearing.all = true;
        await this.loadClearing();
      },

      async loadAudit(fresh) {
        const params = new URLSearchParams({ limit: '100' });
        if (this.audit.actor.trim() !== '') params.set('actor', this.audit.actor.trim());
        if (this.audit.action.trim() !== '') params.set('action', this.audit.action.trim());
        if (!fresh && this.audit.nextBeforeSeq) params.set('beforeSeq', this.audit.nextBeforeSeq);
        const page = await this.attempt(() => this.call('GET', '/v1/console/audit-log?' + params.toString()));
        if (!page) return;
        this.audit.entries = fresh ? page.entries : this.audit.entries.concat(page.entries);
        this.audit.nextBeforeSeq = page.nextBeforeSeq;
        if (fresh && this.may('getAuditTrail')) {
          const trail = await this.attempt(() => this.call('GET', '/v1/audit-trail?limit=100'));
          if (trail) this.audit.ledger = trail.entries;
        }
      },

      async loadKeys() {
        const inventory = await this.attempt(() => this.call('GET', '/v1/console/keys'));
        if (inventory) this.keys = inventory;
      },

      summaryOf(summary) {
        return Object.entries(summary)
          .filter((entry) => typeof entry[1] !== 'object')
          .map((entry) => entry[0] + ' ' + entry[1])
          .join(', ');
      },
    },
  });

  app.mount('#app');
})();
