// The sign-in page says why it is shown again: POST /login answers a refused token with a
// redirect to /login?failed=1.
const failed = new URLSearchParams(location.search).get('failed') === '1';
document.getElementById('login-failed').hidden = !failed;
