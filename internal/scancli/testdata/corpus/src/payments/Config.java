package payments;
public class Config {
  static final String STRIPE_KEY = "sk_live_@@xNEV2iLjQNhPC0pIlsW4DVCJnqCETEGmuI6ydVdBvEVQwg3yc9xP3D1c9Q3j3BPSvjuKk75xALCBfxXlT2JgkOrNLSA605H5MQz"; // want:secret
  private String password; // set from vault
  public String getPassword() { return password; }
  static final String PASSWORD_PARAM = "password";
  static final String TOKEN_URL = "https://auth.acme.io/oauth/token";
}
