package auth

func TestLogin(t *testing.T) {
	password := "password123"
	if err := login("alice", password); err != nil {
		t.Fatal(err)
	}
}

var testToken = "test-token"

const fakeSecret = "not-a-real-secret"
