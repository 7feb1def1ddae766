from django import forms


class SignUpForm(forms.Form):
    full_name = forms.CharField(max_length=200, required=False)
    email = forms.EmailField()
    password = forms.CharField(widget=forms.PasswordInput, min_length=8)
