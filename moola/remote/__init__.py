"""How a gate call runs elsewhere: the Runner interface and this machine's runners (runner), ssh
(ssh), the code bundle (bundle), the remote check (check), transient-error retries (retry), the
runner names (kinds). Only the orchestrating machine imports ssh (paramiko); a pod only ever runs
``moola gate run``."""
