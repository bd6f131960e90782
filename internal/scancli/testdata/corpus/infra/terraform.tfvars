region = "eu-west-1"
databricks_token = "dapi@@62b5e803b61ba4168160adb59261ff2d" # want:secret
vault_token = "hvs.@@CoJBKoYqadr6djrr2kPopQ0tKsEBpkwKG16IoBlLIiaKL8Dn-PcG5ze6nBKSpPyNR5pKnjFJVO54fFnwdrdVsnlvuM20-x" # want:secret
newrelic_key = "NRAK-@@P23L4ZGEIW1XF266CCIFU6FD6YI" # want:secret
instance_type = "t3.micro"
