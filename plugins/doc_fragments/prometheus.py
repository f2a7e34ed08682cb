# -*- coding: utf-8 -*-
# Copyright (c) 2025, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


class ModuleDocFragment:
    # Connection options of the Prometheus HTTP API, for modules (no env/ini/vars: modules do not read them).
    DOCUMENTATION = r'''
options:
  url:
    description:
      - Base URL of the Prometheus HTTP API, for example V(http://localhost:9090), or with a path prefix such as
        V(https://mimir.example.com/prometheus) for Mimir, Cortex or Thanos. C(/api/v1/query) and
        C(/api/v1/query_range) are appended.
      - A user name and password in the URL are never shown in messages.
    type: str
    required: true
  bearer_token:
    description:
      - "Token sent as C(Authorization: Bearer <token>)."
      - Mutually exclusive with O(url_username) and O(url_password) and with an C(Authorization) entry in O(headers).
    type: str
  url_username:
    description:
      - User name for HTTP basic authentication. The credentials are sent with the first request (no 401 round trip).
    type: str
    aliases: [username]
  url_password:
    description:
      - Password for HTTP basic authentication.
    type: str
    aliases: [password]
  client_cert:
    description:
      - PEM file with the client certificate for mutual TLS (may also hold the key).
    type: path
  client_key:
    description:
      - PEM file with the private key of O(client_cert), if not in that file.
    type: path
  ca_path:
    description:
      - PEM file with the CA certificates used to verify the server; when set, only these CAs are trusted.
    type: path
  validate_certs:
    description:
      - Verify the server's TLS certificate. Set to V(false) only for self-signed test servers.
    type: bool
    default: true
  headers:
    description:
      - Extra HTTP headers, for example C(X-Scope-OrgID) for multi-tenant Mimir, Cortex or Thanos.
    type: dict
    default: {}
  timeout:
    description:
      - Seconds to wait for the server to answer a query.
    type: float
    default: 30
  use_proxy:
    description:
      - Use a proxy from the C(http_proxy)/C(https_proxy) environment variables (C(no_proxy) is honoured).
    type: bool
    default: true
  method:
    description:
      - HTTP method. V(auto) uses GET unless the URL would be longer than 2048 characters, then a form-encoded POST.
      - V(POST) is always accepted by Prometheus; some read-only proxies only allow V(GET).
    type: str
    choices: [auto, GET, POST]
    default: auto
'''

    # The same options for lookup plugins, with environment variables, ansible.cfg keys and variables.
    PLUGINS = r'''
options:
  url:
    description:
      - Base URL of the Prometheus HTTP API, for example V(http://localhost:9090), or with a path prefix such as
        V(https://mimir.example.com/prometheus) for Mimir, Cortex or Thanos. C(/api/v1/query) and
        C(/api/v1/query_range) are appended.
      - Required, from the lookup's keyword, a variable, the environment or C(ansible.cfg).
    type: str
    env:
      - name: CANARY_PROMETHEUS_URL
    ini:
      - section: canary_prometheus
        key: url
    vars:
      - name: canary_prometheus_url
  bearer_token:
    description:
      - "Token sent as C(Authorization: Bearer <token>)."
      - Mutually exclusive with O(url_username) and O(url_password) and with an C(Authorization) entry in O(headers).
    type: str
    env:
      - name: CANARY_PROMETHEUS_BEARER_TOKEN
    vars:
      - name: canary_prometheus_bearer_token
  url_username:
    description:
      - User name for HTTP basic authentication. The credentials are sent with the first request.
    type: str
    aliases: [username]
    env:
      - name: CANARY_PROMETHEUS_USERNAME
    vars:
      - name: canary_prometheus_username
  url_password:
    description:
      - Password for HTTP basic authentication.
    type: str
    aliases: [password]
    env:
      - name: CANARY_PROMETHEUS_PASSWORD
    vars:
      - name: canary_prometheus_password
  client_cert:
    description:
      - PEM file with the client certificate for mutual TLS (may also hold the key).
    type: path
    env:
      - name: CANARY_PROMETHEUS_CLIENT_CERT
    ini:
      - section: canary_prometheus
        key: client_cert
    vars:
      - name: canary_prometheus_client_cert
  client_key:
    description:
      - PEM file with the private key of O(client_cert), if not in that file.
    type: path
    env:
      - name: CANARY_PROMETHEUS_CLIENT_KEY
    ini:
      - section: canary_prometheus
        key: client_key
    vars:
      - name: canary_prometheus_client_key
  ca_path:
    description:
      - PEM file with the CA certificates used to verify the server; when set, only these CAs are trusted.
    type: path
    env:
      - name: CANARY_PROMETHEUS_CA_PATH
    ini:
      - section: canary_prometheus
        key: ca_path
    vars:
      - name: canary_prometheus_ca_path
  validate_certs:
    description:
      - Verify the server's TLS certificate. Set to V(false) only for self-signed test servers.
    type: bool
    default: true
    env:
      - name: CANARY_PROMETHEUS_VALIDATE_CERTS
    ini:
      - section: canary_prometheus
        key: validate_certs
    vars:
      - name: canary_prometheus_validate_certs
  headers:
    description:
      - Extra HTTP headers, for example C(X-Scope-OrgID) for multi-tenant Mimir, Cortex or Thanos.
    type: dict
    default: {}
    vars:
      - name: canary_prometheus_headers
  timeout:
    description:
      - Seconds to wait for the server to answer a query.
    type: float
    default: 30
    env:
      - name: CANARY_PROMETHEUS_TIMEOUT
    ini:
      - section: canary_prometheus
        key: timeout
    vars:
      - name: canary_prometheus_timeout
  use_proxy:
    description:
      - Use a proxy from the C(http_proxy)/C(https_proxy) environment variables (C(no_proxy) is honoured).
    type: bool
    default: true
    env:
      - name: CANARY_PROMETHEUS_USE_PROXY
    ini:
      - section: canary_prometheus
        key: use_proxy
  method:
    description:
      - HTTP method. V(auto) uses GET unless the URL would be longer than 2048 characters, then a form-encoded POST.
      - V(POST) is always accepted by Prometheus; some read-only proxies only allow V(GET).
    type: str
    choices: [auto, GET, POST]
    default: auto
    env:
      - name: CANARY_PROMETHEUS_METHOD
    ini:
      - section: canary_prometheus
        key: method
'''
