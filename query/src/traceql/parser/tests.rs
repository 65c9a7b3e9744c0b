use super::parse;
use crate::traceql::ast::*;

fn attr(scope: AttributeScope, name: &str) -> Field {
    Field::Attribute(scope, name.into())
}

fn filter(text: &str) -> FieldExpr {
    match parse(text).unwrap() {
        Query::Spans(Pipeline {
            spans: SpansetExpr::Filter(Some(condition)),
            stages,
        }) if stages.is_empty() => condition,
        other => panic!("{text}: {other:?}"),
    }
}

#[test]
fn conditions_with_typed_literals() {
    assert_eq!(
        filter(r#"{ resource.service.name = "payment" && status = error }"#),
        FieldExpr::And(
            Box::new(FieldExpr::Compare(
                attr(AttributeScope::Resource, "service.name"),
                CompareOp::Eq,
                Literal::String("payment".into())
            )),
            Box::new(FieldExpr::Compare(
                Field::Intrinsic(Intrinsic::Status),
                CompareOp::Eq,
                Literal::Status(StatusValue::Error)
            )),
        )
    );
    assert_eq!(
        filter("{duration>1.5s}"),
        FieldExpr::Compare(
            Field::Intrinsic(Intrinsic::Duration),
            CompareOp::Gt,
            Literal::Duration(1_500_000_000)
        )
    );
    assert_eq!(
        filter("{ span.http.response.status_code >= 500 }"),
        FieldExpr::Compare(
            attr(AttributeScope::Span, "http.response.status_code"),
            CompareOp::Ge,
            Literal::Int(500)
        )
    );
    assert_eq!(
        filter(r#"{ .ratio < -0.5 || span."a key" =~ "x.*" }"#),
        FieldExpr::Or(
            Box::new(FieldExpr::Compare(
                attr(AttributeScope::Any, "ratio"),
                CompareOp::Lt,
                Literal::Float(-0.5)
            )),
            Box::new(FieldExpr::Compare(
                attr(AttributeScope::Span, "a key"),
                CompareOp::Regex,
                Literal::String("x.*".into())
            )),
        )
    );
    assert_eq!(
        filter("{ kind = server && span:name != `raw \\ text` && trace:rootService = \"gw\" }"),
        FieldExpr::And(
            Box::new(FieldExpr::And(
                Box::new(FieldExpr::Compare(
                    Field::Intrinsic(Intrinsic::Kind),
                    CompareOp::Eq,
                    Literal::Kind(KindValue::Server)
                )),
                Box::new(FieldExpr::Compare(
                    Field::Intrinsic(Intrinsic::Name),
                    CompareOp::Ne,
                    Literal::String("raw \\ text".into())
                )),
            )),
            Box::new(FieldExpr::Compare(
                Field::Intrinsic(Intrinsic::TraceRootService),
                CompareOp::Eq,
                Literal::String("gw".into())
            )),
        )
    );
    assert_eq!(
        filter("{ span.cache.hit }"),
        FieldExpr::Exists(attr(AttributeScope::Span, "cache.hit"))
    );
}

#[test]
fn and_binds_tighter_than_or_and_parentheses_group() {
    let a = || {
        FieldExpr::Compare(
            Field::Intrinsic(Intrinsic::Name),
            CompareOp::Eq,
            Literal::String("a".into()),
        )
    };
    let b = || {
        FieldExpr::Compare(
            Field::Intrinsic(Intrinsic::Name),
            CompareOp::Eq,
            Literal::String("b".into()),
        )
    };
    let c = || {
        FieldExpr::Compare(
            Field::Intrinsic(Intrinsic::Name),
            CompareOp::Eq,
            Literal::String("c".into()),
        )
    };
    assert_eq!(
        filter(r#"{ name = "a" || name = "b" && name = "c" }"#),
        FieldExpr::Or(
            Box::new(a()),
            Box::new(FieldExpr::And(Box::new(b()), Box::new(c())))
        )
    );
    assert_eq!(
        filter(r#"{ (name = "a" || name = "b") && name = "c" }"#),
        FieldExpr::And(
            Box::new(FieldExpr::Or(Box::new(a()), Box::new(b()))),
            Box::new(c())
        )
    );
}

#[test]
fn spanset_operators_and_stages() {
    let Query::Spans(pipeline) = parse(
        r#"{ .a = 1 } > { .b = 2 } && { } >> { .c = 3 } | select(span.x, duration) | count() > 2"#,
    )
    .unwrap() else {
        panic!("not a span query");
    };
    let SpansetExpr::Binary(left, SpansetOp::And, right) = &pipeline.spans else {
        panic!("{:?}", pipeline.spans);
    };
    assert!(matches!(
        **left,
        SpansetExpr::Binary(_, SpansetOp::Child, _)
    ));
    assert!(matches!(
        **right,
        SpansetExpr::Binary(_, SpansetOp::Descendant, _)
    ));
    assert_eq!(
        pipeline.stages,
        [
            Stage::Select(vec![
                attr(AttributeScope::Span, "x"),
                Field::Intrinsic(Intrinsic::Duration)
            ]),
            Stage::Count(CompareOp::Gt, 2.0),
        ]
    );
    let Query::Spans(pipeline) = parse("({} ~ {}) || {} | avg(duration) > 1s").unwrap() else {
        panic!()
    };
    assert!(matches!(
        pipeline.spans,
        SpansetExpr::Binary(_, SpansetOp::Or, _)
    ));
    assert_eq!(
        pipeline.stages,
        [Stage::Aggregate(
            AggregateFn::Avg,
            Field::Intrinsic(Intrinsic::Duration),
            CompareOp::Gt,
            Literal::Duration(1_000_000_000)
        )]
    );
}

#[test]
fn metrics_queries() {
    let Query::Metrics(q) =
        parse("{ status = error } | rate() by (resource.service.name)").unwrap()
    else {
        panic!()
    };
    assert_eq!(q.function, MetricsFn::Rate);
    assert_eq!(q.by, [attr(AttributeScope::Resource, "service.name")]);
    let Query::Metrics(q) = parse("{} | quantile_over_time(duration, .99, 0.5)").unwrap() else {
        panic!()
    };
    assert_eq!(
        q.function,
        MetricsFn::QuantileOverTime(Field::Intrinsic(Intrinsic::Duration), vec![0.99, 0.5])
    );
    assert!(q.by.is_empty());
    let Query::Metrics(q) = parse("{} | histogram_over_time(duration) by (span:name)").unwrap()
    else {
        panic!()
    };
    assert_eq!(
        q.function,
        MetricsFn::HistogramOverTime(Field::Intrinsic(Intrinsic::Duration))
    );
    assert_eq!(q.by, [Field::Intrinsic(Intrinsic::Name)]);
    assert!(matches!(
        parse("{} | count_over_time()").unwrap(),
        Query::Metrics(_)
    ));
}

#[test]
fn errors_name_the_construct_and_where() {
    for (query, needle) in [
        ("{ span.a = }", "expected a value"),
        ("{ span.a = 1", "expected `}`"),
        (
            "{ event.name = \"x\" }",
            "`event.` attributes are not supported",
        ),
        ("{ foo = 1 }", "unknown field `foo`"),
        ("{ duration > \"slow\" }", "duration takes a duration"),
        ("{ status = 200 }", "status takes `error`"),
        ("{ status > error }", "status takes"),
        ("{ span.a =~ 5 }", "takes a quoted regular expression"),
        ("{ span.a =~ \"(\" }", "invalid regular expression"),
        ("{ duration > 5parsecs }", "unknown unit"),
        ("{} | frobnicate()", "`frobnicate` is not supported"),
        ("{} | rate() | count() > 1", "must be the last stage"),
        ("{ span.a + 1 = 2 }", "arithmetic"),
        ("{ span.a = span.b }", "comparing two fields"),
        ("{} !> {}", "negated structural"),
        ("{ \"x }", "not closed"),
        ("{} }", "after the end of the query"),
        ("", "expected a span set"),
        ("{} | quantile_over_time(duration, 2)", "not in [0, 1]"),
        ("{ span.a = 99999999999999999999 }", "not a 64-bit integer"),
    ] {
        let err = parse(query).expect_err(query);
        assert!(err.message.contains(needle), "{query}: {err}");
        assert!(
            err.to_string()
                .starts_with("TraceQL parse error at character"),
            "{err}"
        );
    }
    assert_eq!(parse("{ span.a = }").unwrap_err().offset, 11);
}

#[test]
fn grafana_drilldown_root_spans_and_constants() {
    assert_eq!(
        filter("{nestedSetParent<0 && true}"),
        FieldExpr::And(
            Box::new(FieldExpr::Compare(
                Field::Intrinsic(Intrinsic::NestedSetParent),
                CompareOp::Lt,
                Literal::Int(0)
            )),
            Box::new(FieldExpr::Constant(true)),
        )
    );
    assert_eq!(filter("{ false }"), FieldExpr::Constant(false));
    assert_eq!(
        filter("{ nestedSetParent = -1 }"),
        FieldExpr::Compare(
            Field::Intrinsic(Intrinsic::NestedSetParent),
            CompareOp::Eq,
            Literal::Int(-1)
        )
    );
    // Without nested-set numbers, only comparisons that a root or non-root decides.
    let err = parse("{ nestedSetParent > 4 }").unwrap_err();
    assert!(err.message.contains("root spans"), "{}", err.message);
}
