# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# The release: the same variables as examples/local_fleet.

variable "service" {
  description = "The service being released: the Service tag, and part of every name."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$", var.service))
    error_message = "The service must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit."
  }
}

variable "release_version" {
  description = "The new version: the Version tag of the canary instances (your user data or launch template installs it)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9_.+-]{0,62}$", var.release_version))
    error_message = "The release_version must be 1-63 letters, digits, '.', '_', '+' or '-', starting with a letter or digit."
  }
}

variable "baseline_version" {
  description = "The version the baseline instances run (the stable version): their Version tag. Required when baseline_count > 0."
  type        = string
  default     = ""

  validation {
    condition     = var.baseline_version == "" || can(regex("^[A-Za-z0-9][A-Za-z0-9_.+-]{0,62}$", var.baseline_version))
    error_message = "The baseline_version must be empty or 1-63 letters, digits, '.', '_', '+' or '-'."
  }
}

variable "canary_count" {
  description = "How many canary instances to create."
  type        = number
  default     = 1

  validation {
    condition     = var.canary_count >= 1 && var.canary_count <= 16 && floor(var.canary_count) == tonumber(var.canary_count)
    error_message = "The canary_count must be a whole number from 1 to 16."
  }
}

variable "baseline_count" {
  description = "How many baseline instances (fresh instances of baseline_version, created with the canary and compared with it) to create; 0 for none."
  type        = number
  default     = 0

  validation {
    condition     = var.baseline_count >= 0 && var.baseline_count <= 16 && floor(var.baseline_count) == tonumber(var.baseline_count)
    error_message = "The baseline_count must be a whole number from 0 to 16."
  }
}

# The instances.

variable "ami_id" {
  description = "The AMI of the instances. Empty: the launch template's image (launch_template_id must then be set)."
  type        = string
  default     = ""

  validation {
    condition     = var.ami_id == "" || can(regex("^ami-[0-9a-f]{8,17}$", var.ami_id))
    error_message = "The ami_id must be empty or an AMI id (ami-0123456789abcdef0)."
  }
}

variable "launch_template_id" {
  description = "A launch template for the instances (lt-...). Empty: none; ami_id, instance_type and the other variables describe the instance."
  type        = string
  default     = ""

  validation {
    condition     = var.launch_template_id == "" || can(regex("^lt-[0-9a-f]{8,17}$", var.launch_template_id))
    error_message = "The launch_template_id must be empty or a launch template id (lt-0123456789abcdef0)."
  }
}

variable "launch_template_version" {
  description = "The launch template version: a number, $Latest or $Default."
  type        = string
  default     = "$Default"

  validation {
    condition     = can(regex("^([0-9]+|\\$Latest|\\$Default)$", var.launch_template_version))
    error_message = "The launch_template_version must be a number, $Latest or $Default."
  }
}

variable "instance_type" {
  description = "The EC2 instance type. Empty: the launch template's."
  type        = string
  default     = "t3.micro"

  validation {
    condition     = var.instance_type == "" || can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.instance_type))
    error_message = "The instance_type must be empty or an instance type such as t3.micro."
  }
}

variable "subnet_ids" {
  description = "Subnets the instances are spread over (round robin), in the VPC of vpc_id."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0 && alltrue([for id in var.subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", id))])
    error_message = "The subnet_ids must be a non-empty list of subnet ids (subnet-...)."
  }
}

variable "security_group_ids" {
  description = "Security groups of the instances (they must let the load balancer reach app_port)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.security_group_ids : can(regex("^sg-[0-9a-f]{8,17}$", id))])
    error_message = "The security_group_ids must be security group ids (sg-...)."
  }
}

variable "user_data" {
  description = "User data per track (keys canary and baseline), for example a cloud-init script that installs that track's version. A missing track gets none (or the launch template's)."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for track in keys(var.user_data) : contains(["canary", "baseline"], track)])
    error_message = "The user_data keys must be canary and/or baseline."
  }
}

variable "key_name" {
  description = "An EC2 key pair for SSH. Empty: none."
  type        = string
  default     = ""
}

variable "iam_instance_profile" {
  description = "An IAM instance profile name for the instances. Empty: none."
  type        = string
  default     = ""
}

# The target groups (one per track; attach them to a listener's weighted forward action with canary.release.alb_weights).

variable "vpc_id" {
  description = "The VPC of the target groups (the subnets' VPC)."
  type        = string

  validation {
    condition     = can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "The vpc_id must be a VPC id (vpc-...)."
  }
}

variable "app_port" {
  description = "The port the service listens on (target group port)."
  type        = number
  default     = 80

  validation {
    condition     = var.app_port >= 1 && var.app_port <= 65535
    error_message = "The app_port must be from 1 to 65535."
  }
}

variable "target_group_protocol" {
  description = "The protocol from the load balancer to the instances."
  type        = string
  default     = "HTTP"

  validation {
    condition     = contains(["HTTP", "HTTPS"], var.target_group_protocol)
    error_message = "The target_group_protocol must be HTTP or HTTPS."
  }
}

variable "health_check" {
  description = "Health check of the target groups: path, matcher (HTTP codes), interval and timeout (seconds), healthy and unhealthy thresholds."
  type = object({
    path                = string
    matcher             = string
    interval            = number
    timeout             = number
    healthy_threshold   = number
    unhealthy_threshold = number
  })
  default = {
    path                = "/health"
    matcher             = "200"
    interval            = 10
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 2
  }

  validation {
    condition = (
      can(regex("^/", var.health_check.path))
      && var.health_check.interval >= 5 && var.health_check.interval <= 300
      && var.health_check.timeout >= 2 && var.health_check.timeout < var.health_check.interval
      && var.health_check.healthy_threshold >= 2 && var.health_check.healthy_threshold <= 10
      && var.health_check.unhealthy_threshold >= 2 && var.health_check.unhealthy_threshold <= 10
    )
    error_message = "The health_check needs a path starting with /, an interval of 5-300 s, a timeout of at least 2 s below the interval, thresholds of 2-10."
  }
}

variable "deregistration_delay" {
  description = "Seconds the target groups let in-flight requests finish when a target leaves (ELB default 300; canaries are short-lived)."
  type        = number
  default     = 30

  validation {
    condition     = var.deregistration_delay >= 0 && var.deregistration_delay <= 3600
    error_message = "The deregistration_delay must be from 0 to 3600 seconds."
  }
}

variable "tags" {
  description = "Extra tags of every resource (Service, Track and Version are set by the module)."
  type        = map(string)
  default     = {}
}
