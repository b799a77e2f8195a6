package odata

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/sandbox/data"
)

// QueryError is a query the engine refuses: Status 400 for one it cannot
// read or that names what does not exist, 404 for a function P21 does not
// support.
type QueryError struct {
	Status  int
	Message string
}

func (e *QueryError) Error() string { return e.Message }

func bad(format string, args ...any) *QueryError {
	return &QueryError{Status: 400, Message: fmt.Sprintf(format, args...)}
}

// Limits on a $filter: longer or deeper ones are "too complex", as P21
// says of its own limits.
const (
	maxFilterLen = 4096
	maxDepth     = 32
	maxNodes     = 256
)

// Expr is a node of a parsed $filter.
type Expr interface{ expr() }

// Logical is "and" or "or".
type Logical struct {
	Op          string
	Left, Right Expr
}

// Not negates its operand.
type Not struct{ X Expr }

// Compare is a comparison: eq ne gt ge lt le.
type Compare struct {
	Op          string
	Left, Right Expr
}

// Call is a function call: contains, startswith, endswith, substringof.
type Call struct {
	Name string
	Args []Expr
}

// Member names a property (a column).
type Member struct{ Name string }

// Literal kinds.
const (
	LitString = "string"
	LitInt    = "integer"
	LitNumber = "number"
	LitDate   = "date"
	LitBool   = "boolean"
	LitNull   = "null"
)

// Literal is a constant: Kind says which; Value is string, int64,
// float64, time.Time, bool or nil.
type Literal struct {
	Kind  string
	Value any
	Text  string // as written
}

func (Logical) expr() {}
func (Not) expr()     {}
func (Compare) expr() {}
func (Call) expr()    {}
func (Member) expr()  {}
func (Literal) expr() {}

type token struct {
	kind string // ident, string, number, date, lparen, rparen, comma, slash, eof
	text string
	pos  int
}

func lex(s string) ([]token, error) {
	var out []token
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			out = append(out, token{"lparen", "(", i})
			i++
		case c == ')':
			out = append(out, token{"rparen", ")", i})
			i++
		case c == ',':
			out = append(out, token{"comma", ",", i})
			i++
		case c == '/':
			out = append(out, token{"slash", "/", i})
			i++
		case c == '\'':
			var b strings.Builder
			j := i + 1
			closed := false
			for j < len(s) {
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' {
						b.WriteByte('\'')
						j += 2
						continue
					}
					closed = true
					j++
					break
				}
				b.WriteByte(s[j])
				j++
			}
			if !closed {
				return nil, bad("Invalid filter expression: the string starting at position %d is not closed with '", i+1)
			}
			out = append(out, token{"string", b.String(), i})
			i = j
		case isDigit(c) || (c == '-' || c == '+') && i+1 < len(s) && isDigit(s[i+1]):
			j := i + 1
			for j < len(s) && (isDigit(s[j]) || strings.IndexByte(".-+:TZtz", s[j]) >= 0 ||
				(s[j] == 'e' || s[j] == 'E') && j+1 < len(s) && (isDigit(s[j+1]) || s[j+1] == '-' || s[j+1] == '+')) {
				// A date's "-" and a number's sign after "e" both continue the token.
				j++
			}
			text := s[i:j]
			kind := "number"
			if len(text) >= 10 && text[4] == '-' && text[7] == '-' && isDigit(text[0]) {
				kind = "date"
			}
			out = append(out, token{kind, text, i})
			i = j
		case isIdentStart(c):
			j := i + 1
			for j < len(s) && isIdent(s[j]) {
				j++
			}
			out = append(out, token{"ident", s[i:j], i})
			i = j
		default:
			return nil, bad("Invalid filter expression: unexpected %q at position %d", string(rune(c)), i+1)
		}
	}
	return append(out, token{"eof", "", len(s)}), nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isIdentStart(c byte) bool {
	return c == '_' || c == '$' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}
func isIdent(c byte) bool { return isIdentStart(c) || isDigit(c) }

type parser struct {
	toks  []token
	i     int
	depth int
	nodes int
	src   string
}

// ParseFilter parses a $filter expression into its syntax tree.
func ParseFilter(s string) (Expr, error) {
	if len(s) > maxFilterLen {
		return nil, bad("Query is too complex: $filter is longer than %d characters", maxFilterLen)
	}
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks, src: s}
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != "eof" {
		return nil, p.unexpected(t)
	}
	return e, nil
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != "eof" {
		p.i++
	}
	return t
}

func (p *parser) unexpected(t token) error {
	if t.kind == "eof" {
		return bad("Invalid filter expression: '%s' ends too early", gatehouse.Clip(p.src, 200))
	}
	return bad("Invalid filter expression: unexpected '%s' at position %d", gatehouse.Clip(t.text, 40), t.pos+1)
}

func (p *parser) isWord(w string) bool {
	t := p.peek()
	return t.kind == "ident" && t.text == w
}

func (p *parser) grow() error {
	p.nodes++
	if p.nodes > maxNodes {
		return bad("Query is too complex: $filter has more than %d terms", maxNodes)
	}
	return nil
}

func (p *parser) or() (Expr, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.isWord("or") {
		p.next()
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		if err := p.grow(); err != nil {
			return nil, err
		}
		l = Logical{"or", l, r}
	}
	return l, nil
}

func (p *parser) and() (Expr, error) {
	l, err := p.not()
	if err != nil {
		return nil, err
	}
	for p.isWord("and") {
		p.next()
		r, err := p.not()
		if err != nil {
			return nil, err
		}
		if err := p.grow(); err != nil {
			return nil, err
		}
		l = Logical{"and", l, r}
	}
	return l, nil
}

func (p *parser) not() (Expr, error) {
	if p.isWord("not") {
		p.next()
		p.depth++
		if p.depth > maxDepth {
			return nil, bad("Query is too complex: $filter is nested deeper than %d", maxDepth)
		}
		x, err := p.not()
		p.depth--
		if err != nil {
			return nil, err
		}
		return Not{x}, p.grow()
	}
	return p.compare()
}

var compareOps = map[string]bool{"eq": true, "ne": true, "gt": true, "ge": true, "lt": true, "le": true}

func (p *parser) compare() (Expr, error) {
	l, err := p.primary()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind == "ident" && compareOps[t.text] {
		p.next()
		r, err := p.primary()
		if err != nil {
			return nil, err
		}
		return Compare{t.text, l, r}, p.grow()
	}
	if t := p.peek(); t.kind == "ident" && compareOps[strings.ToLower(t.text)] {
		return nil, bad("Invalid filter expression: operators are lower case ('%s', not '%s')", strings.ToLower(t.text), t.text)
	}
	return l, nil
}

var functions = map[string]int{"contains": 2, "startswith": 2, "endswith": 2, "substringof": 2}

func (p *parser) primary() (Expr, error) {
	if err := p.grow(); err != nil {
		return nil, err
	}
	t := p.next()
	switch t.kind {
	case "lparen":
		p.depth++
		if p.depth > maxDepth {
			return nil, bad("Query is too complex: $filter is nested deeper than %d", maxDepth)
		}
		e, err := p.or()
		if err != nil {
			return nil, err
		}
		p.depth--
		if c := p.next(); c.kind != "rparen" {
			return nil, p.unexpected(c)
		}
		return e, nil
	case "string":
		return Literal{LitString, t.text, "'" + t.text + "'"}, nil
	case "number":
		if n, err := strconv.ParseInt(t.text, 10, 64); err == nil {
			return Literal{LitInt, n, t.text}, nil
		}
		if f, err := strconv.ParseFloat(t.text, 64); err == nil {
			return Literal{LitNumber, f, t.text}, nil
		}
		return nil, bad("Invalid filter expression: '%s' is not a number", gatehouse.Clip(t.text, 40))
	case "date":
		tm, ok := data.ParseDateTime(t.text)
		if !ok {
			return nil, bad("Invalid filter expression: '%s' is not a date (2025-01-31) or date and time (2025-01-31T08:00:00Z)", gatehouse.Clip(t.text, 40))
		}
		return Literal{LitDate, tm, t.text}, nil
	case "ident":
		switch t.text {
		case "true", "false":
			return Literal{LitBool, t.text == "true", t.text}, nil
		case "null":
			return Literal{LitNull, nil, t.text}, nil
		}
		if p.peek().kind == "lparen" {
			return p.call(t)
		}
		if p.peek().kind == "slash" {
			return nil, bad("Invalid filter expression: '%s/…' navigates to another entity, which the sandbox does not support", gatehouse.Clip(t.text, 40))
		}
		if strings.HasPrefix(t.text, "$") {
			return nil, bad("Invalid filter expression: '%s' is not supported", gatehouse.Clip(t.text, 40))
		}
		return Member{t.text}, nil
	}
	return nil, p.unexpected(t)
}

func (p *parser) call(name token) (Expr, error) {
	p.next() // (
	fn := strings.ToLower(name.text)
	n, ok := functions[fn]
	if !ok {
		if fn == "now" || fn == "maxdatetime" || fn == "mindatetime" {
			// P21 answers these with a 404.
			return nil, &QueryError{Status: 404, Message: fmt.Sprintf("The function %s() is not supported; compute the date in the client and compare with a literal (2025-01-31)", name.text)}
		}
		return nil, bad("Invalid filter expression: unknown function '%s'", gatehouse.Clip(name.text, 40))
	}
	var args []Expr
	if p.peek().kind != "rparen" {
		for {
			p.depth++
			if p.depth > maxDepth {
				return nil, bad("Query is too complex: $filter is nested deeper than %d", maxDepth)
			}
			a, err := p.or()
			p.depth--
			if err != nil {
				return nil, err
			}
			args = append(args, a)
			if p.peek().kind != "comma" {
				break
			}
			p.next()
		}
	}
	if c := p.next(); c.kind != "rparen" {
		return nil, p.unexpected(c)
	}
	if len(args) != n {
		return nil, bad("Invalid filter expression: %s takes %d arguments, not %d", fn, n, len(args))
	}
	return Call{fn, args}, nil
}

// Resolver finds the column a property name stands for; nil when none.
type Resolver func(name string) *data.Column

// SQL compiles the filter into a SQL condition over the resolved columns,
// with every value a ? parameter in args.
func SQL(e Expr, resolve Resolver) (string, []any, error) {
	c := &compiler{resolve: resolve}
	s, typ, err := c.compile(e)
	if err != nil {
		return "", nil, err
	}
	if typ != tBool {
		return "", nil, bad("Invalid filter expression: the filter is not a condition (true or false)")
	}
	return s, c.args, nil
}

type typ int

const (
	tNull typ = iota
	tString
	tNumber
	tDate
	tBool
)

func (t typ) String() string {
	return [...]string{"null", "a string", "a number", "a date", "a condition"}[t]
}

func colTyp(c *data.Column) typ {
	switch c.Type {
	case data.Int, data.Decimal:
		return tNumber
	case data.DateTime:
		return tDate
	case data.Bool:
		return tBool
	}
	return tString
}

type compiler struct {
	resolve Resolver
	args    []any
}

func (c *compiler) member(m Member) (*data.Column, error) {
	col := c.resolve(m.Name)
	if col == nil {
		return nil, bad("Invalid filter expression: '%s' is not a property of this resource", gatehouse.Clip(m.Name, 60))
	}
	return col, nil
}

func (c *compiler) compile(e Expr) (string, typ, error) {
	switch x := e.(type) {
	case Logical:
		l, lt, err := c.compile(x.Left)
		if err != nil {
			return "", 0, err
		}
		r, rt, err := c.compile(x.Right)
		if err != nil {
			return "", 0, err
		}
		if lt != tBool || rt != tBool {
			return "", 0, bad("Invalid filter expression: both sides of '%s' must be conditions", x.Op)
		}
		return "(" + l + " " + strings.ToUpper(x.Op) + " " + r + ")", tBool, nil
	case Not:
		s, t, err := c.compile(x.X)
		if err != nil {
			return "", 0, err
		}
		if t != tBool {
			return "", 0, bad("Invalid filter expression: 'not' applies to a condition")
		}
		return "(NOT " + s + ")", tBool, nil
	case Member:
		col, err := c.member(x)
		if err != nil {
			return "", 0, err
		}
		if col.Type != data.Bool {
			return "", 0, bad("Invalid filter expression: '%s' is %s, not a condition; compare it (%s eq …)", col.Name, colTyp(col), col.Name)
		}
		return "(" + data.Ident(col.Name) + " = 1)", tBool, nil
	case Literal:
		if x.Kind == LitBool {
			if x.Value.(bool) {
				return "(1 = 1)", tBool, nil
			}
			return "(1 = 0)", tBool, nil
		}
		return "", 0, bad("Invalid filter expression: %s is not a condition", gatehouse.Clip(x.Text, 40))
	case Call:
		return c.call(x)
	case Compare:
		return c.compare(x)
	}
	return "", 0, bad("Invalid filter expression")
}

var sqlOps = map[string]string{"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}

// operand compiles one side of a comparison, its literal converted to
// want (the other side's column type, when it is a column).
func (c *compiler) operand(e Expr, want *data.Column) (string, typ, error) {
	switch x := e.(type) {
	case Member:
		col, err := c.member(x)
		if err != nil {
			return "", 0, err
		}
		return data.Ident(col.Name), colTyp(col), nil
	case Literal:
		if x.Kind == LitNull {
			return "NULL", tNull, nil
		}
		v, t, err := literalValue(x, want)
		if err != nil {
			return "", 0, err
		}
		c.args = append(c.args, v)
		return "?", t, nil
	}
	return "", 0, bad("Invalid filter expression: compare a property with a value (name eq 'x'), not an expression")
}

func literalValue(l Literal, want *data.Column) (any, typ, error) {
	switch l.Kind {
	case LitString:
		if want != nil && want.Type == data.DateTime {
			// A quoted date, as some clients write it.
			if tm, ok := data.ParseDateTime(l.Value.(string)); ok {
				return tm.Format(time.RFC3339), tDate, nil
			}
		}
		return l.Value, tString, nil
	case LitInt:
		return l.Value, tNumber, nil
	case LitNumber:
		return l.Value, tNumber, nil
	case LitDate:
		return l.Value.(time.Time).Format(time.RFC3339), tDate, nil
	case LitBool:
		if l.Value.(bool) {
			return int64(1), tBool, nil
		}
		return int64(0), tBool, nil
	}
	return nil, tNull, nil
}

func (c *compiler) compare(x Compare) (string, typ, error) {
	var lcol, rcol *data.Column
	if m, ok := x.Left.(Member); ok {
		lcol = c.resolve(m.Name)
	}
	if m, ok := x.Right.(Member); ok {
		rcol = c.resolve(m.Name)
	}
	l, lt, err := c.operand(x.Left, rcol)
	if err != nil {
		return "", 0, err
	}
	r, rt, err := c.operand(x.Right, lcol)
	if err != nil {
		return "", 0, err
	}
	if lt == tNull || rt == tNull {
		other := l
		if lt == tNull {
			other = r
		}
		switch {
		case lt == tNull && rt == tNull:
			return "", 0, bad("Invalid filter expression: compare a property with null")
		case x.Op == "eq":
			return "(" + other + " IS NULL)", tBool, nil
		case x.Op == "ne":
			return "(" + other + " IS NOT NULL)", tBool, nil
		}
		return "", 0, bad("Invalid filter expression: null can only be compared with eq or ne")
	}
	if lt != rt {
		return "", 0, bad("Invalid filter expression: '%s %s %s' compares %s with %s", describe(x.Left), x.Op, describe(x.Right), lt, rt)
	}
	return "(" + l + " " + sqlOps[x.Op] + " " + r + ")", tBool, nil
}

func describe(e Expr) string {
	switch x := e.(type) {
	case Member:
		return gatehouse.Clip(x.Name, 40)
	case Literal:
		return gatehouse.Clip(x.Text, 40)
	}
	return "(…)"
}

func (c *compiler) call(x Call) (string, typ, error) {
	col, lit := x.Args[0], x.Args[1]
	if x.Name == "substringof" {
		// OData v2: substringof('value', Property).
		col, lit = x.Args[1], x.Args[0]
	}
	m, ok := col.(Member)
	l, ok2 := lit.(Literal)
	if !ok || !ok2 || l.Kind != LitString {
		return "", 0, bad("Invalid filter expression: %s takes a property and a string ('…')", x.Name)
	}
	column, err := c.member(m)
	if err != nil {
		return "", 0, err
	}
	if column.Type != data.String {
		return "", 0, bad("Invalid filter expression: %s needs a string property; '%s' is %s", x.Name, column.Name, colTyp(column))
	}
	v := likeEscape(l.Value.(string))
	switch x.Name {
	case "contains", "substringof":
		v = "%" + v + "%"
	case "startswith":
		v += "%"
	case "endswith":
		v = "%" + v
	}
	c.args = append(c.args, v)
	return "(" + data.Ident(column.Name) + ` LIKE ? ESCAPE '\')`, tBool, nil
}

func likeEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}
