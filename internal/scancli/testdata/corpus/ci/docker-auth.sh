docker login -u acmebot -p dckr_pat_@@oJrZEmvwajbjonf0_mucNcItmTB # want:secret
git clone https://ci-bot:@@qwLKrcrFzKDRvwz013GavVJw@git.acme.internal/platform/infra.git # want:secret
