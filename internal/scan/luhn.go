package scan

// Luhn reports whether digits (ASCII '0'–'9' only) pass the Luhn check of
// ISO/IEC 7812-1, which every payment card number passes. The secret and
// card-data detectors share it.
func Luhn(digits string) bool {
	sum, alt := 0, false
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if alt {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		alt = !alt
	}
	return sum%10 == 0
}
