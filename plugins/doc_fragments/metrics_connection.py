# -*- coding: utf-8 -*-
# Copyright (c) 2025, canary.release maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


class ModuleDocFragment:
    # The connection option of the modules that read the judge's metrics (analysis, rollout_report); argument spec:
    # _analysis/metric_clients.connection_option_spec(), merged by metric_clients.merge_connection().
    DOCUMENTATION = r'''
options:
  connection:
    description:
      - The Prometheus and AWS connection options in one dict, so that one variable (or C(module_defaults)) can
        carry them. Its keys have the names and the types of the top-level options of the same name.
      - A top-level option given in the task wins over the same key of O(connection). A key of O(connection) wins
        over the option's default and over the AWS environment variables. Unset keys leave the option alone.
      - The secrets O(connection.bearer_token), O(connection.url_password), O(connection.secret_key) and
        O(connection.session_token) are never logged.
    type: dict
    suboptions:
      url:
        description: Base URL of the Prometheus HTTP API, as O(url).
        type: str
      bearer_token:
        description: Bearer token for Prometheus, as O(bearer_token).
        type: str
      url_username:
        description: User name for HTTP basic authentication, as O(url_username).
        type: str
      url_password:
        description: Password for HTTP basic authentication, as O(url_password).
        type: str
      headers:
        description: Extra HTTP headers, as O(headers).
        type: dict
      client_cert:
        description: Client certificate for mutual TLS, as O(client_cert).
        type: path
      client_key:
        description: Private key of the client certificate, as O(client_key).
        type: path
      ca_path:
        description: CA certificates to verify the server with, as O(ca_path).
        type: path
      timeout:
        description: Seconds to wait for Prometheus, as O(timeout).
        type: float
      use_proxy:
        description: Use a proxy from the environment, as O(use_proxy).
        type: bool
      validate_certs:
        description: Verify TLS certificates of Prometheus and the AWS API, as O(validate_certs).
        type: bool
      region:
        description: AWS region, as O(region).
        type: str
      endpoint_url:
        description: URL of the AWS API endpoint, as O(endpoint_url).
        type: str
      profile:
        description: AWS profile, as O(profile).
        type: str
      access_key:
        description: AWS access key ID, as O(access_key).
        type: str
      secret_key:
        description: AWS secret access key, as O(secret_key).
        type: str
      session_token:
        description: AWS session token, as O(session_token).
        type: str
'''
