# -*- coding: utf-8 -*-
# Copyright: canary.release contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r'''
name: webhook_signature
short_description: The signature headers of a webhook event (HMAC-SHA256 over timestamp and body)
version_added: 0.2.0
author:
  - canary.release maintainers (@canary-release)
description:
  - Takes the exact body that will be sent and returns the two headers that sign it -
    C(X-Canary-Release-Timestamp) (unix seconds) and C(X-Canary-Release-Signature) (C(sha256=) and the lower-case
    hex HMAC-SHA256 under O(secret) of C(<timestamp>.<body>)).
  - Send the body exactly as given, for example with M(ansible.builtin.uri) and
    O(ansible.builtin.uri#module:body_format=raw) - the receiver recomputes the signature over the bytes it received.
  - Both headers are computed in one call, so the timestamp in the header is the one that was signed.
  - Use it in a task with C(no_log) - the secret is an argument.
  - The receiver's check is in the collection's docs/webhooks.md.
positional: secret, timestamp
options:
  _input:
    description: The body, exactly as it will be sent (a string, encoded as UTF-8).
    type: str
    required: true
  secret:
    description: The shared secret (not empty).
    type: str
    required: true
  timestamp:
    description: Unix seconds to sign with; default now.
    type: int
'''

EXAMPLES = r'''
- name: Send a signed event
  ansible.builtin.uri:
    url: "{{ webhook_url }}"
    method: POST
    body_format: raw
    body: "{{ event_body }}"
    headers: "{{ {'Content-Type': 'application/json'} | combine(event_body | canary.release.webhook_signature(webhook_secret)) }}"
  no_log: true
  vars:
    event_body: "{{ {'text': 'web 1.4.0: promoted'} | to_json }}"
'''

RETURN = r'''
_value:
  description: 'The headers: C({"X-Canary-Release-Signature": "sha256=<hex>", "X-Canary-Release-Timestamp": "<seconds>"}).'
  type: dict
'''

from ansible.errors import AnsibleFilterError

from ansible_collections.canary.release.plugins.module_utils._common.webhook_signing import (
    SigningError,
    signature_headers,
)


def webhook_signature(body, secret, timestamp=None):
    try:
        return signature_headers(secret, body, timestamp)
    except SigningError as error:
        raise AnsibleFilterError('webhook_signature: %s' % error)


class FilterModule(object):
    def filters(self):
        return {'webhook_signature': webhook_signature}
