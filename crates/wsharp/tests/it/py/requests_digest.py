"""Fetches URL with Python requests' HTTPDigestAuth(USER, PASSWORD); prints the status and body."""

import sys

import requests
from requests.auth import HTTPDigestAuth

url, user, password = sys.argv[1:4]
r = requests.get(url, auth=HTTPDigestAuth(user, password), timeout=10)
print(r.status_code, r.text.strip(), flush=True)
