token = "Vb7-qLs2-Mn4x-Rr8w-Kk1z"  # interlock:allow generic-api-key fixture for the golden test
