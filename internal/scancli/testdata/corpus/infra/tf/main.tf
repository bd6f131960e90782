resource "aws_s3_bucket_acl" "logs" {
  bucket = aws_s3_bucket.logs.id
  acl    = "public-read" # want:misconfiguration
}

resource "aws_security_group" "bastion" { # want:misconfiguration
  name = "bastion"
  ingress { # want:misconfiguration
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"] # want:misconfiguration
  }
  ingress {
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_db_instance" "main" { # want:misconfiguration
  engine              = "postgres"
  instance_class      = "db.t3.micro"
  publicly_accessible = true # want:misconfiguration
}

resource "aws_db_instance" "private" { # want:misconfiguration
  engine              = "postgres"
  publicly_accessible = false
  storage_encrypted   = true
}

resource "aws_ebs_volume" "data" { # want:misconfiguration
  availability_zone = "eu-west-1a"
  size              = 40
  encrypted         = false # want:misconfiguration
}

resource "aws_cloudtrail" "main" { # want:misconfiguration
  name           = "main"
  s3_bucket_name = "trail"
  enable_logging = false # want:misconfiguration
}

resource "google_compute_firewall" "rdp" {
  name          = "allow-rdp"
  network       = "default"
  source_ranges = ["0.0.0.0/0"] # want:misconfiguration
  allow {
    protocol = "tcp"
    ports    = ["3389"]
  }
}

resource "azurerm_network_security_rule" "ssh" {
  name                        = "ssh"
  direction                   = "Inbound"
  access                      = "Allow"
  protocol                    = "Tcp"
  source_address_prefix       = "*" # want:misconfiguration
  destination_port_range      = "22"
}

resource "aws_security_group_rule" "internal_ssh" { # want:misconfiguration
  type        = "ingress"
  from_port   = 22
  to_port     = 22
  protocol    = "tcp"
  cidr_blocks = ["10.0.0.0/8"]
}
