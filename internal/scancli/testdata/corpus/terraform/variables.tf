variable "db_password" {
  type      = string
  sensitive = true
}
variable "api_key" {
  description = "API key for the provider"
  default     = ""
}
