package main

import "os"

const defaultToken = "glpat-@@Q_PdOTxSXbD_NS-r7Io6"                                        // want:secret
var dopToken = "dop_v1_@@604d115cea325a65e19cbae530282bd36cb9d21f6be6abf0d7c1c1e21862ab8a" // want:secret
func main() {
	password := os.Getenv("PASSWORD")
	secret := cfg.Secret
	_ = password
	_ = secret
	jwt := "eyJhbGciOiAiUlMyNTYiLCAidHlwIjogIkpXVCJ9.eyJzdWIiOiAic3ZjLWNxdXJ0YSIsICJpc3MiOiAiaHR0cHM6Ly9hdXRoLmludGVybmFsIiwgImV4cCI6IDE5MDAwMDAwMDB9.83TDyxnWt_G_N1cJUfewkAPoKVq84zfKsD9XAQCr_vMTHrwUFbbZYlWXPuVNVUJaOf8oWVTCx4D0yTvl5bTF6O" // want:secret
	_ = jwt
}

// TokenType is the kind of token.
type TokenType string

const tokenHeader = "X-Auth-Token"
