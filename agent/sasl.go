package agent

import "github.com/siltstream/silt/auth"

// newAuthenticator builds the SASL authenticator of cfg.SASL, or nil if
// no mechanism is enabled.
func (a *Agent) newAuthenticator() (*auth.Authenticator, error) {
	if len(a.cfg.SASL.Mechanisms) == 0 {
		return nil, nil
	}
	c := a.cfg.SASL
	c.Credentials = a.store
	c.Logger = a.log
	return auth.New(c)
}
