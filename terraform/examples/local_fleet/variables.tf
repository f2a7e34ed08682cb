# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# The release: the same variables as modules/aws_canary_fleet.

variable "service" {
  description = "The service being released; part of every host's name in the sample app (Service tag on AWS)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$", var.service))
    error_message = "The service must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit."
  }
}

variable "release_version" {
  description = "The new version: the canary hosts run the sample app with --app-version set to it."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_.+-]{0,62}$", var.release_version))
    error_message = "The release_version must be 1-63 letters, digits, '.', '_', '+' or '-', starting with a letter or digit."
  }
}

variable "baseline_version" {
  description = "The version the baseline hosts run (the stable version). Required when baseline_count > 0."
  type        = string
  default     = ""

  validation {
    condition     = var.baseline_version == "" || can(regex("^[A-Za-z0-9][A-Za-z0-9_.+-]{0,62}$", var.baseline_version))
    error_message = "The baseline_version must be empty or 1-63 letters, digits, '.', '_', '+' or '-'."
  }
}

variable "canary_count" {
  description = "How many canary hosts to create."
  type        = number
  default     = 1

  validation {
    condition     = var.canary_count >= 1 && var.canary_count <= 16 && floor(var.canary_count) == tonumber(var.canary_count)
    error_message = "The canary_count must be a whole number from 1 to 16."
  }
}

variable "baseline_count" {
  description = "How many baseline hosts (fresh hosts of baseline_version, compared with the canary) to create; 0 for none."
  type        = number
  default     = 0

  validation {
    condition     = var.baseline_count >= 0 && var.baseline_count <= 16 && floor(var.baseline_count) == tonumber(var.baseline_count)
    error_message = "The baseline_count must be a whole number from 0 to 16."
  }
}

# The local hosts.

variable "work_dir" {
  description = "Absolute path of a directory for the hosts' files (sshd configuration, host keys, logs); one subdirectory per host, removed on destroy."
  type        = string

  validation {
    condition     = can(regex("^/", var.work_dir))
    error_message = "The work_dir must be an absolute path."
  }
}

variable "ssh_authorized_key" {
  description = "The public key (one line of an authorized_keys file) that may log in to every host as ssh_user."
  type        = string

  validation {
    condition     = can(regex("^(ssh-(ed25519|rsa)|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+( [^\n]*)?$", trimspace(var.ssh_authorized_key)))
    error_message = "The ssh_authorized_key must be one OpenSSH public key line (ssh-ed25519, ssh-rsa or ecdsa-sha2-*)."
  }
}

variable "ssh_user" {
  description = "The only user sshd lets in (AllowUsers). Creating namespaces needs root, so the default is root."
  type        = string
  default     = "root"

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_-]{0,31}$", var.ssh_user))
    error_message = "The ssh_user must be a valid user name."
  }
}

variable "ssh_port" {
  description = "The port sshd listens on inside each host's namespace."
  type        = number
  default     = 22

  validation {
    condition     = var.ssh_port >= 1 && var.ssh_port <= 65535
    error_message = "The ssh_port must be from 1 to 65535."
  }
}

variable "app_script" {
  description = "Absolute path of the sample app (examples/local/sample_app.py of the collection)."
  type        = string

  validation {
    condition     = can(regex("^/", var.app_script))
    error_message = "The app_script must be an absolute path."
  }
}

variable "python" {
  description = "The Python interpreter that runs the sample app (it needs prometheus-client), for example the .venv's."
  type        = string
  default     = "python3"
}

variable "app_port" {
  description = "The port the sample app listens on inside each host's namespace."
  type        = number
  default     = 8080

  validation {
    condition     = var.app_port >= 1 && var.app_port <= 65535
    error_message = "The app_port must be from 1 to 65535."
  }
}

variable "app_args" {
  description = "Extra command-line arguments of the sample app per track, for example { canary = [\"--error-rate\", \"0.05\"] }."
  type        = map(list(string))
  default     = {}

  validation {
    condition     = alltrue([for track in keys(var.app_args) : contains(["canary", "baseline"], track)])
    error_message = "The app_args keys must be canary and/or baseline."
  }
}

variable "name_prefix" {
  description = "Prefix of the network namespace names (<prefix>-canary-1, ...). Empty: cf-<workspace>."
  type        = string
  default     = ""

  validation {
    condition     = var.name_prefix == "" || can(regex("^[a-z0-9][a-z0-9.-]{0,39}$", var.name_prefix))
    error_message = "The name_prefix must be empty or 1-40 lower-case letters, digits, '.' or '-'."
  }
}

variable "subnet_cidr" {
  description = "IPv4 range the hosts' point-to-point links (one /30 each) are cut from. Empty: a /24 in 10.213.0.0/16 chosen from a hash of the name prefix."
  type        = string
  default     = ""

  validation {
    condition     = var.subnet_cidr == "" || (can(cidrhost(var.subnet_cidr, 0)) && can(regex("^[0-9.]+/(1[6-9]|2[0-6])$", var.subnet_cidr)))
    error_message = "The subnet_cidr must be empty or an IPv4 CIDR with a prefix length from 16 to 26."
  }
}

variable "ready_timeout" {
  description = "Seconds each host may take until sshd and the app's /health answer."
  type        = number
  default     = 30

  validation {
    condition     = var.ready_timeout > 0 && var.ready_timeout <= 600
    error_message = "The ready_timeout must be from 1 to 600 seconds."
  }
}
